"""The recipient's name and mobile number, as typed in chat or on the web form."""

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.config import Delivery
from bot.forms import person
from bot.forms.address import parse_address
from bot.forms.base import Given, Invalid
from bot.forms.delivery import check_slot, parse_slot
from bot.forms.person import check_phone, mask_phone, parse_name, parse_phone, show_phone


def code_of(parse, text):
    with pytest.raises(Invalid) as caught:
        parse(text)
    return caught.value.code


# -- name ---------------------------------------------------------------------


def test_name_is_stripped_and_inner_spaces_collapsed():
    assert parse_name("  张   小红 \n") == "张 小红"


def test_name_with_full_width_space_is_collapsed():
    assert parse_name("Anna\u3000Müller") == "Anna Müller"


@pytest.mark.parametrize(
    "name", ["张小红", "李", "Anna Müller", "阿卜杜·热合曼", "张三😀", "O'Brien"]
)
def test_real_names_are_accepted(name):
    assert parse_name(name) == name


@pytest.mark.parametrize("text", ["", "   ", "\n\t", None])
def test_blank_name_is_refused_as_empty(text):
    assert code_of(parse_name, text) == "name_empty"


def test_name_of_twenty_characters_is_accepted():
    assert parse_name("王" * 20) == "王" * 20


def test_name_over_twenty_characters_is_too_long_and_says_how_long():
    with pytest.raises(Invalid) as caught:
        parse_name("王" * 21)
    assert caught.value.code == "name_too_long"
    assert caught.value.params["length"] == 21
    assert caught.value.params["limit"] == 20


@pytest.mark.parametrize(
    "text",
    [
        "12345",
        "１２３",
        "😀😀",
        "🎁",
        "……",
        "---",
        "http://example.cn/x",
        "www.taobao.com",
        "shop.com 张",
    ],
)
def test_name_without_letters_or_with_a_url_is_invalid(text):
    assert code_of(parse_name, text) == "name_invalid"


@pytest.mark.parametrize("text", ["张\x00三", "李\u202e四", "王\u200b五", "赵\x1b[31m六"])
def test_name_with_control_characters_is_refused_by_the_one_rule_and_not_echoed(text):
    """Every free-text field refuses them with one reason (bot/forms/safety.py, review 2 F9),
    which echoes nothing of the text."""
    with pytest.raises(Invalid) as caught:
        parse_name(text)
    assert caught.value.code == "hidden_characters"
    assert caught.value.params == {"label": "姓名"}


# -- phone --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "13800138000",
        " 138 0013 8000 ",
        "138-0013-8000",
        "+86 138-0013-8000",
        "+8613800138000",
        "008613800138000",
        "0086 138 0013 8000",
        "8613800138000",
        "86 138 0013 8000",
        "+86 (138) 0013 8000",
        "１３８００１３８０００",
        "＋８６　１３８－００１３－８０００",
    ],
)
def test_phone_with_prefixes_spaces_dashes_and_full_width_digits_is_normalised(text):
    assert parse_phone(text) == "+8613800138000"


def test_phone_with_plus86_and_dashes_is_normalised():
    assert parse_phone("+86-139-1234-5678") == "+8613912345678"


@pytest.mark.parametrize("text", ["17012345678", "19912345678", "15012345678"])
def test_newer_mobile_ranges_are_accepted(text):
    assert parse_phone(text) == "+86" + text


@pytest.mark.parametrize("text", ["", "  ", None])
def test_blank_phone_is_refused_as_empty(text):
    assert code_of(parse_phone, text) == "phone_empty"


@pytest.mark.parametrize(
    "text",
    [
        "12345",
        "1380013800",  # ten digits
        "138001380001",  # twelve digits
        "abc",
        "138OO138OOO",  # letter O for zero
        "10000000000",  # no such range
        "+85291234567",  # Hong Kong mobile: not mainland
        "+1 650 253 0000",
        "138 0013 8000 转 12",
        "+999 1234 5678",  # no such country code: the parser gives up
    ],
)
def test_phone_that_is_not_a_mainland_number_is_invalid(text):
    assert code_of(parse_phone, text) == "phone_invalid"


def test_invalid_phone_echoes_what_was_typed():
    with pytest.raises(Invalid) as caught:
        parse_phone(" 12345 ")
    assert caught.value.params == {"text": "12345"}


@pytest.mark.parametrize(
    "text", ["010-12345678", "0755 8765 4321", "+86 21 6234 5678", "4008008000"]
)
def test_landline_or_service_number_is_not_mobile(text):
    assert code_of(parse_phone, text) == "phone_not_mobile"


def test_stored_phone_parses_to_itself_so_check_is_stable():
    assert parse_phone(parse_phone("138 0013 8000")) == "+8613800138000"


def test_phone_is_masked_for_logs():
    assert mask_phone("+8613800138000") == "138****8000"
    assert mask_phone("+8612345678") == "123****5678"  # eight digits: the shortest shown
    assert mask_phone("+861234567") == "*******"  # seven: all hidden


def test_phone_is_grouped_three_four_four_for_display():
    assert show_phone("+8613800138000") == "138 0013 8000"


def test_mask_and_show_do_not_fail_on_unexpected_values():
    assert mask_phone("+123") == "***"
    assert show_phone("+44207") == "44207"


# -- every refusal of the three field modules has a one-line template -----------

ROOT = Path(__file__).parent.parent
NOW = dt.datetime(2026, 11, 28, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
DELIVERY = Delivery(closed_dates=["2026-12-03"])
ERROR_CODES = {
    "name_empty", "name_too_long", "name_invalid",
    "phone_empty", "phone_invalid", "phone_not_mobile",
    "address_empty", "address_too_long", "address_no_region", "address_no_district",
    "address_too_short",
    "slot_empty", "slot_unknown", "slot_out_of_range", "slot_unavailable",
}  # fmt: skip
# Real inputs, parsed for real, so each template renders with the params the code passes.
REFUSALS = [
    (parse_name, ""),
    (parse_name, "王" * 21),
    (parse_name, "12345"),
    (parse_phone, ""),
    (parse_phone, "12345"),
    (parse_phone, "010-12345678"),
    (parse_address, ""),
    (parse_address, "广东省深圳市南山区" + "科技园" * 40),
    (parse_address, "科技园南区 8 栋 1201"),
    (parse_address, "深圳市科技园南区 8 栋 1201"),
    (parse_address, "广东 科技园南区 8 栋 1201"),
    (parse_address, "广东省深圳市南山区 科技园"),
    (parse_address, "广东省深圳市南山区"),
    *[
        (lambda text: parse_slot(text, DELIVERY, NOW), text)
        for text in ["", "随便", "99", "11月27日", "今天晚上", "12月3日", "12月10日", "12点"]
    ],
    (lambda text: parse_slot(text, Delivery(closed_dates=["2026-11-28"], days_ahead=1), NOW), "1"),
    (lambda text: check_slot(text, DELIVERY, NOW), "next tuesday"),
]


def test_every_error_code_has_a_one_line_template_that_renders_with_its_params():
    env = Environment(loader=FileSystemLoader(ROOT / "templates"), undefined=StrictUndefined)
    seen = set()
    for parse, text in REFUSALS:
        with pytest.raises(Invalid) as caught:
            parse(text)
        error = caught.value
        line = env.get_template(f"errors/{error.code}.txt").render(**error.params).strip()
        assert line and "\n" not in line and "{" not in line, (error.code, line)
        assert len(line) <= 100, (error.code, line)  # fits beside a web field and in one bubble
        seen.add(error.code)
    assert seen == ERROR_CODES


def test_a_number_this_process_gave_is_checked_without_phonenumbers_and_any_other_with_it(
    monkeypatch,
):
    monkeypatch.setattr(person, "_GIVEN", Given())  # what other tests parsed is not counted
    given = parse_phone("139 0013 9000")

    def no_parse(*args):
        raise AssertionError("parsed again")

    monkeypatch.setattr(person.phonenumbers, "parse", no_parse)
    assert check_phone(given) == given
    with pytest.raises(AssertionError, match="parsed again"):
        check_phone("+8613900139001")  # stored, but not given here: parsed again
    monkeypatch.undo()
    with pytest.raises(Invalid) as caught:
        check_phone("+861390013900")  # a digit short: refused as it would be typed
    assert caught.value.code == "phone_invalid"
