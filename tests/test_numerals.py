"""Numbers as people say them (issue 26): quantities, list choices, slot numbers and `撤回 n`
accept Chinese numerals (两, 三, 十二) and a voice message's 一。, at the top level and in
every form, through the one home where numbers are read (bot/forms/numbers.py); what is not
a number a person picks stays refused (tests/test_properties.py has the odd ones)."""

from __future__ import annotations

import pytest
from helpers import ANSWERS, confirm_card, fill, say

from bot.forms.numbers import arabic, small_number
from storage.models import Order, Share


@pytest.mark.parametrize(
    ("said", "number"),
    [("两", 2), ("三", 3), ("十二", 12), ("一。", 1), ("２", 2), ("壹", 1), ("3。", 3),
     ("二十", 20), ("五 ", 5)],
)  # fmt: skip
def test_a_number_said_in_chinese_reads_as_its_value(said, number):
    assert small_number(said) == number


@pytest.mark.parametrize("said", ["", "两份多", "一千万", "九" * 9, "9" * 5000, "٣", "十二点"])
def test_what_is_not_a_number_a_person_picks_is_none(said):
    assert small_number(said) is None


def test_numerals_inside_words_read_as_digits_for_dates():
    assert arabic("明天下午三点半") == "明天下午3点半"
    assert arabic("十二月三十一日 两点") == "12月31日 2点"


def gift_named(reply: dict) -> str:
    return reply["article"]["Title"] if reply["MsgType"] == "news" else reply["Content"]


def test_at_the_top_level_two_and_a_spoken_one_pick_those_gifts(bot):
    assert "流心奶黄月饼" in gift_named(bot.wx.text("o_giver", "两"))
    assert "明前龙井礼盒" in gift_named(bot.wx.voice("o_giver", recognition="一。"))
    assert "当季水果篮" in gift_named(bot.wx.text("o_giver", "六"))


def test_the_share_form_takes_two_portions_in_words(bot):
    for text in ("1", "送", "两份", "跳过"):
        reply = say(bot, "o_giver", text)
    assert "份数：2" in reply, reply
    confirm_card(bot.wx, "o_giver")
    assert Share.get().quantity == 2


def test_a_draws_winners_in_words(bot):
    for text in ("1", "抽奖", "三", "跳过", "跳过"):
        reply = say(bot, "o_giver", text)
    confirm_card(bot.wx, "o_giver")
    assert Share.get().quantity == 3, reply


def test_the_order_form_takes_a_variant_and_a_slot_in_words(bot):
    for text in ("3", "送", "1", "跳过"):
        bot.wx.text("o_giver", text)
    token = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    say(bot, "o_friend", f"领取 {token}")
    say(bot, "o_friend", "二")  # 向日葵, the second flower
    for field in ("name", "phone", "address"):
        say(bot, "o_friend", ANSWERS[field])
    summary = bot.wx.voice("o_friend", recognition="一。")["Content"]
    assert "向日葵" in summary and "确认" in summary
    say(bot, "o_friend", "确认")
    assert Order.get().variant == "向日葵"


def test_editing_a_field_by_its_number_in_words(bot):
    share = say(bot, "o_giver", "1", "送", "1", "跳过")
    assert "确认" in share
    token = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    fill(bot, "o_friend", token)
    assert "姓名" in say(bot, "o_friend", "修改 一")


def test_revoke_takes_the_shares_number_in_words(bot):
    for _ in range(2):
        for text in ("1", "送", "1", "跳过"):
            bot.wx.text("o_giver", text)
        confirm_card(bot.wx, "o_giver")
    say(bot, "o_giver", "我送出的")
    assert "已撤回" in say(bot, "o_giver", "撤回 两")
    assert Share.select().where(Share.revoked_at.is_null(False)).count() == 1
