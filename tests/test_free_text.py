"""Free text others will read (a blessing, a name, an address, a thank-you note) holds nothing
hidden and no link (bot/forms/safety.py; review 2, F6 and F9): each field refuses them with
the one rule's reason, in chat and on the web, and keeps nothing."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from conftest import make_config
from helpers import BOTH_DATABASES, browser, claim, conversation, fill, say, share_in_chat

from bot.codes import Code
from bot.forms.base import FormContext, Invalid
from bot.forms.order import OrderForm
from bot.forms.safety import has_markup, hidden, neutral
from bot.forms.share import ShareForm
from bot.gifting import thanks
from bot.gifting.shares import Allowance
from bot.render import Renderer
from storage.models import Order

# Review 2, F6: what the fixed list of top-level domains let through.
LINKS = [
    "gift-claim.ru/x",
    "gift-claim.dev",
    "bit.do",
    "47.96.1.2/claim",
    "ｗｗｗ．ｅｖｉｌ．ｃｏｍ",
]
# Review 2, F9, and their kin: bidi override and isolate, zero-width space, a tag character,
# a byte-order mark, a soft hyphen, a Hangul filler, a variation selector beyond the emoji
# ones, an escape.
HIDDEN = [
    "\u202e",
    "\u2066",
    "\u200b",
    "\U000e0041",
    "\ufeff",
    "\u00ad",
    "\u3164",
    "\U000e0100",
    "\x1b",
]
# Spacing controls: a field that folds runs of spaces (a name, an address) or splits lines (a
# note) keeps a plain space or line break instead; none is ever kept as it is.
SPACING = ["\t", "\u2028", "\u2029", "\x0b", "\x85"]
# Words that look a little like links and are not, and characters that only look hidden.
PLAIN = [
    "祝你生日快乐！", "Happy birthday. Love you", "1.5kg 的茶", "圆周率 3.14", "No.1 的好朋友",
    "2026.12.01 见", "v1.2 版", "e.g. 这样", "👨‍👩‍👧 一家人", "🏳️‍🌈", "中文　全角空格", "约翰·史密斯",
]  # fmt: skip
ADDRESS = "广东省深圳市南山区科技园南区8栋1201{}"


@pytest.fixture(scope="module")
def fields():
    """Each free-text field's parser as its form (or the note's check) runs it."""
    config = make_config("sqlite:///:memory:", "http://127.0.0.1:8080")
    gift = SimpleNamespace(id="tea", name="茶", available=5, variants=[], price=100, active=True)
    allowance = Allowance(units=20, held=0, shares_this_hour=0, next_share_at=None)
    ctx = FormContext(
        config, dt.datetime(2026, 12, 2, tzinfo=dt.UTC), {"gift": gift, "allowance": allowance}
    )
    share, order = ShareForm(ctx), OrderForm(ctx)
    return {
        "祝福语": lambda text: share.field("blessing").parse(text, ctx),
        "姓名": lambda text: order.field("name").parse("张三" + text, ctx),
        "地址": lambda text: order.field("address").parse(ADDRESS.format(text), ctx),
        "留言": lambda text: thanks.check(config, "收到啦" + text),
        "renderer": Renderer(config),
    }


def refusal(parse, text: str) -> Invalid:
    with pytest.raises(Invalid) as caught:
        parse(text)
    return caught.value


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("label", ["祝福语", "姓名", "地址", "留言"])
def test_any_host_or_ip_address_is_refused_in_every_free_text_field(fields, label, link):
    refused = refusal(fields[label], " " + link)
    if label == "姓名":  # a name's own words: 「…」不像人名
        assert refused.code == Code.NAME_INVALID
    else:
        assert (refused.code, refused.params) == (Code.MARKUP_REFUSED, {"label": label})
    assert "英文句点后面请空一格" in fields["renderer"].error(refused) or label == "姓名"


@pytest.mark.parametrize("character", HIDDEN, ids=[f"U+{ord(c):04X}" for c in HIDDEN])
@pytest.mark.parametrize("label", ["祝福语", "姓名", "地址", "留言"])
def test_a_hidden_character_is_refused_in_every_free_text_field_with_one_reason(
    fields, label, character
):
    refused = refusal(fields[label], "好" + character + "的")
    assert (refused.code, refused.params) == (Code.HIDDEN_CHARACTERS, {"label": label})
    assert fields["renderer"].error(refused).startswith(f"{label}里有看不见的字符")


@pytest.mark.parametrize("character", SPACING, ids=[f"U+{ord(c):04X}" for c in SPACING])
@pytest.mark.parametrize("label", ["祝福语", "姓名", "地址", "留言"])
def test_a_spacing_control_is_refused_or_kept_as_a_plain_space(fields, label, character):
    try:
        kept = fields[label]("好" + character + "的")
    except Invalid as refused:
        assert (refused.code, refused.params) == (Code.HIDDEN_CHARACTERS, {"label": label})
    else:
        assert label != "祝福语" and character not in str(kept), kept


@pytest.mark.parametrize("text", PLAIN)
def test_plain_words_emoji_and_numbers_are_kept_as_typed(fields, text):
    assert fields["祝福语"](text) == text and fields["留言"](text).endswith(text)
    assert not has_markup(text) and hidden(text) == []


def test_a_blessing_and_a_note_keep_their_line_breaks(fields):
    assert fields["祝福语"]("第一行\n第二行") == "第一行\n第二行"
    assert fields["留言"]("\n第二行").endswith("\n第二行")


def test_values_kept_before_the_rule_are_echoed_without_their_hidden_characters():
    assert neutral("生日\u202e快乐\u200b！\n👨‍👩‍👧") == "生日快乐！\n👨‍👩‍👧"


# -- in chat and on the web, with nothing kept ------------------------------------------


@BOTH_DATABASES
@pytest.mark.parametrize(
    "blessing", [f"领取请到 {LINKS[0]}", LINKS[2], "生日\u202e快乐", "快\u200b乐"]
)
def test_a_blessing_with_a_link_or_a_hidden_character_is_refused_in_chat(bot, blessing):
    reply = say(bot, "o_giver", "1", "送", "1", blessing)
    assert "祝福语里" in reply and "【2/2】" in reply
    assert "blessing" not in conversation("o_giver").answers


@BOTH_DATABASES
def test_the_web_form_refuses_a_link_or_a_hidden_character_and_orders_nothing(bot):
    token = share_in_chat(bot)
    phone = browser(bot, "o_friend")
    for fields, reason in [
        ({"address": ADDRESS.format(" 47.96.1.2")}, "地址里不能有链接"),
        ({"address": ADDRESS.format("\u200b")}, "地址里有看不见的字符"),
        ({"name": "张\u2066三"}, "姓名里有看不见的字符"),
        ({"name": "gift-claim.dev"}, "不像人名"),
    ]:
        answer = claim(bot, phone, token, **fields)
        assert answer.status_code == 400 and reason in answer.text, fields
    assert Order.select().count() == 0


@BOTH_DATABASES
def test_a_note_with_a_link_or_a_hidden_character_is_refused_in_chat(bot):
    token = share_in_chat(bot)
    fill(bot, "o_friend", token)
    assert "领取成功" in say(bot, "o_friend", "确认")
    for note, reason in [
        ("谢谢 去 bit.do 看看", "留言里不能有链接"),
        ("谢谢 好\U000e0041的", "留言里有看不见的字符"),
    ]:
        assert reason in say(bot, "o_friend", note)
    assert Order.get().thanks == ""
