"""S11 in chat: the giver's share dialogue (送 → how many → blessing → 确认) on the form engine."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from helpers import (
    BOTH_DATABASES,
    PAID,
    browser,
    claim,
    confirm_card,
    conversation,
    fill,
    free_mode_only,
    monday_morning,
    say,
    share_in_chat,
    tuesday_afternoon,
)
from transcripts import check_transcript

from storage.models import Gift, Share


@pytest.fixture(autouse=True)
def monday(bot) -> dt.date:
    """Every test here runs on the pinned clock (see helpers.monday_morning)."""
    return monday_morning(bot)


def committed(gift_id: str = "tea-longjing") -> int:
    return Gift.get_by_id(gift_id).committed


def test_share_without_a_picked_gift_asks_to_pick_one_first(bot):
    reply = say(bot, "o_giver", "送")
    assert "先选一份礼物" in reply and "「礼品」" in reply
    assert conversation("o_giver").flow is None and Share.select().count() == 0


def test_a_wrong_quantity_is_asked_again_with_the_reason_and_nothing_is_stored(bot):
    reply = say(bot, "o_giver", "1", "送")
    assert "【1/2】送几份？回复 1 到 10 之间的数字" in reply and "「取消」" in reply
    for typed, reason in [
        ("0", "份数要在 1 到 10 之间，0 不行哦"),
        ("11", "份数要在 1 到 10 之间，11 不行哦"),
        ("abc", "份数要写数字，例如「1」，最多 10 份"),
        ("很多份", "份数要写数字"),  # 两份 is 2 (tests/test_numerals.py)
    ]:
        reply = say(bot, "o_giver", typed)
        assert reason in reply and "【1/2】送几份" in reply, reply
        row = conversation("o_giver")
        assert row.step == "quantity" and row.answers == {}
    assert "【2/2】" in say(bot, "o_giver", "3份")
    assert conversation("o_giver").answers == {"quantity": 3}


def test_no_more_than_the_stock_left_can_be_shared(bot):
    Gift.update(stock=Gift.committed + 3).where(Gift.id == "mooncake").execute()
    reply = say(bot, "o_giver", "2", "送")
    assert "回复 1 到 3 之间的数字" in reply
    reply = say(bot, "o_giver", "5")
    assert "份数要在 1 到 3 之间，5 不行哦" in reply and conversation("o_giver").answers == {}
    say(bot, "o_giver", "3", "跳过", "确认")
    assert Gift.get_by_id("mooncake").available == 0


def test_a_blessing_too_long_is_refused_with_its_length(bot):
    most = bot.config.shares.blessing_max_length
    say(bot, "o_giver", "1", "送", "1")
    reply = say(bot, "o_giver", "祝" * (most + 1))
    assert f"祝福语太长了（{most + 1} 字），请写 {most} 字以内" in reply and "【2/2】" in reply
    row = conversation("o_giver")
    assert row.step == "blessing" and row.answers == {"quantity": 1}
    reply = say(bot, "o_giver", "祝" * most)
    assert "请确认" in reply and f"2. 祝福语：{'祝' * most}" in reply


def test_skip_sends_the_gift_without_a_blessing(bot):
    reply = say(bot, "o_giver", "1", "送", "1", "跳过")
    assert "2. 祝福语：（不写祝福语）" in reply
    card = confirm_card(bot.wx, "o_giver")
    assert Share.get().blessing == "" and "“" not in card["Description"]


def test_back_goes_one_step_back_and_says_so_on_the_first_step(bot):
    reply = say(bot, "o_giver", "1", "送", "返回")
    assert "已经是第一步了" in reply and "【1/2】送几份" in reply
    reply = say(bot, "o_giver", "2", "返回")
    assert "【1/2】送几份" in reply and conversation("o_giver").answers == {}
    reply = say(bot, "o_giver", "2", "生日快乐", "返回")
    assert "【2/2】写一句祝福语" in reply and conversation("o_giver").answers == {"quantity": 2}


def test_edit_one_on_the_summary_changes_the_quantity_and_returns_to_the_summary(bot):
    reply = say(bot, "o_giver", "1", "送", "1", "生日快乐")
    assert "1. 份数：1" in reply
    reply = say(bot, "o_giver", "修改 1")
    assert "【1/2】送几份" in reply and "（回复「返回」" in reply
    reply = say(bot, "o_giver", "3")
    assert "请确认" in reply and "1. 份数：3" in reply and "2. 祝福语：生日快乐" in reply
    reply = say(bot, "o_giver", "2", "新年快乐")  # a number on the summary edits that row
    assert "2. 祝福语：新年快乐" in reply and "1. 份数：3" in reply
    before = committed()
    bot.wx.text("o_giver", "确认")
    share = Share.get()
    assert (share.quantity, share.blessing) == (3, "新年快乐") and committed() == before + 3


def test_editing_a_share_field_says_back_keeps_the_old_value(bot):
    say(bot, "o_giver", "1", "送", "1", "生日快乐")
    reply = say(bot, "o_giver", "修改 1")
    assert "「返回」不改了" in reply and "回到上一步" not in reply


@BOTH_DATABASES
def test_cancel_reserves_nothing(bot):
    before = committed()
    say(bot, "o_giver", "1", "送", "2", "生日快乐")
    reply = say(bot, "o_giver", "取消")
    assert "这次不送了" in reply and "没有占用库存" in reply
    assert committed() == before and Share.select().count() == 0
    assert conversation("o_giver").flow is None


@BOTH_DATABASES
def test_confirm_reserves_exactly_the_quantity_and_answers_with_the_claim_card(bot):
    before = committed()
    say(bot, "o_giver", "1", "送", "3", "生日快乐！")
    card = confirm_card(bot.wx, "o_giver")
    share = Share.get()
    assert committed() == before + 3
    assert (share.giver_id, share.gift_id, share.quantity, share.claimed, share.blessing) == (
        "o_giver", "tea-longjing", 3, 0, "生日快乐！",
    )  # fmt: skip
    assert card["Url"] == f"{bot.url}/claim/{share.token}"
    assert "明前龙井礼盒" in card["Title"] and "共 3 份，先到先得" in card["Title"]
    assert "生日快乐！" in card["Description"]
    assert conversation("o_giver").flow is None


def test_out_of_stock_is_a_clear_reply_and_starts_nothing(bot):
    Gift.update(stock=Gift.committed).where(Gift.id == "scarf").execute()
    reply = say(bot, "o_giver", "5", "送")
    assert "「羊绒围巾」库存不足，暂时送完了" in reply
    assert conversation("o_giver").flow is None and committed("scarf") == 0


@BOTH_DATABASES
def test_out_of_stock_is_a_clear_reply_and_stock_never_goes_negative(bot):
    Gift.update(stock=Gift.committed + 1).where(Gift.id == "mooncake").execute()
    share_in_chat(bot, giver="o_a", number="2")
    for text in ("2", "送"):
        reply = bot.wx.text("o_b", text)
    assert "库存不足" in reply["Content"] or "送完" in reply["Content"]
    assert Gift.get_by_id("mooncake").available == 0


def test_stock_gone_before_confirm_reserves_nothing_and_says_so(bot):
    say(bot, "o_giver", "2", "送", "2", "跳过")
    Gift.update(committed=Gift.stock).where(Gift.id == "mooncake").execute()  # others took it
    reply = say(bot, "o_giver", "确认")
    assert "「流心奶黄月饼」库存不足" in reply
    assert Share.select().count() == 0


def test_stock_gone_before_confirm_does_not_ask_for_a_number_between_1_and_0(bot):
    say(bot, "o_giver", "2", "送", "2", "跳过")
    Gift.update(committed=Gift.stock).where(Gift.id == "mooncake").execute()
    reply = say(bot, "o_giver", "确认")
    assert "1 到 0" not in reply
    assert conversation("o_giver").flow is None


def test_my_gifts_lists_each_share_with_its_status_and_no_recipient_details(bot, monday):
    share_in_chat(bot, number="2")  # will expire unclaimed
    bot.clock.offset += dt.timedelta(hours=bot.config.shares.expire_hours, minutes=1)
    whole = share_in_chat(bot, number="1")
    half = share_in_chat(bot, number="6", quantity="2")
    fill(bot, "o_friend", whole)
    say(bot, "o_friend", "确认")
    today = monday + dt.timedelta(hours=bot.config.shares.expire_hours)
    claim(bot, browser(bot, "o_other"), half, delivery=tuesday_afternoon(today))
    reply = bot.wx.click("o_giver", "MY_GIFTS")["Content"]
    assert "你送出的礼物（最近 3 次）" in reply
    assert "明前龙井礼盒 × 1：已全部领取" in reply
    assert "当季水果篮 × 2：1/2 份已领" in reply and "前有效" in reply
    returned = "已退款 ¥128.00" if PAID else "已退回"  # words about money only when it was paid
    assert f"流心奶黄月饼 × 1：已过期（0/1 份已领，未领的{returned}）" in reply
    for private in ("张小红", "138", "0013", "南山", "科技园", "1201", "o_friend", "o_other"):
        assert private not in reply
    assert reply == say(bot, "o_giver", "我送出的")


@free_mode_only("the transcript is free mode's words: 确认 answers with the card at once")
def test_transcript_giver_shares(bot):
    bot.wx.subscribe("o_giver")
    bot.wx.click("o_giver", "GIFTS")
    for text in ("1", "送", "0", "2", "祝你生日快乐，天天开心！", "修改 1", "1", "确认"):
        bot.wx.text("o_giver", text)
    token = Share.get().token
    bot.wx.click("o_giver", "MY_GIFTS")
    check_transcript("giver_shares", bot.wx.transcript, tokens=[token])


# -- no follower can empty a gift ----------------------------------------------------

SHARE_TEN = ("礼品", "1", "送", "10", "跳过", "确认")


def test_one_giver_cannot_reserve_more_than_the_limit_and_is_told_why(bot):
    """The audit's case: 礼品, 1, 送, 10, 跳过, 确认 four times."""
    before = Gift.get_by_id("tea-longjing").available
    for _ in range(2):
        say(bot, "o_hoarder", *SHARE_TEN[:-1])
        assert confirm_card(bot.wx, "o_hoarder")["Url"].endswith(
            f"/claim/{Share.select().order_by(Share.id.desc()).get().token}"
        )
    reply = say(bot, "o_hoarder", "礼品", "1", "送")
    assert "还有 20 份没人领取" in reply and "每人同时最多留 20 份" in reply
    assert conversation("o_hoarder").flow is None
    assert Share.select().count() == 2
    assert Gift.get_by_id("tea-longjing").available == before - 20
    assert "回复 1 到 10" in say(bot, "o_other", "1", "送"), "another giver is not held back"


def test_the_quantity_asked_for_is_capped_by_what_the_giver_may_still_hold(bot):
    say(bot, "o_giver", *SHARE_TEN)
    say(bot, "o_giver", "2", "送", "8", "跳过", "确认")
    reply = say(bot, "o_giver", "3", "送")
    assert "回复 1 到 2 之间的数字" in reply
    reply = say(bot, "o_giver", "3")
    assert "份数要在 1 到 2 之间，3 不行哦" in reply and "你还能送 2 份" in reply


def test_units_claimed_or_expired_free_the_givers_allowance(bot):
    token = share_in_chat(bot, giver="o_giver", quantity="10")
    say(bot, "o_giver", *SHARE_TEN)
    assert "每人同时最多留" in say(bot, "o_giver", "1", "送")
    claim(bot, browser(bot, "o_friend"), token)
    assert "回复 1 到 1 之间的数字" in say(bot, "o_giver", "1", "送")
    say(bot, "o_giver", "取消")
    bot.clock.offset += dt.timedelta(hours=bot.config.shares.expire_hours, minutes=1)
    assert "回复 1 到 10 之间的数字" in say(bot, "o_giver", "1", "送")


def test_a_giver_may_create_only_so_many_shares_an_hour(bot_factory):
    bot = bot_factory(shares={"max_shares_per_hour": 2})
    monday_morning(bot)
    for _ in range(2):
        share_in_chat(bot, giver="o_busy")
    reply = say(bot, "o_busy", "1", "送")
    assert "一小时内已经送出 2 次礼物了" in reply and "以后再送吧" in reply
    bot.clock.offset += dt.timedelta(hours=1, minutes=1)
    assert "【1/2】" in say(bot, "o_busy", "1", "送")


def test_operators_are_warned_when_one_giver_holds_over_a_tenth_of_a_gift(bot, log_lines):
    share_in_chat(bot, giver="o_small", quantity="4")  # 4 of 40: not more than a tenth
    assert not [line for line in log_lines() if line["level"] == "warning"]
    share_in_chat(bot, giver="o_big", quantity="5")
    (warning,) = [line for line in log_lines() if line["level"] == "warning"]
    assert warning["event"] == "one giver holds more than a tenth of a gift"
    assert (warning["gift"], warning["held"], warning["stock"]) == ("tea-longjing", 5, 40)
    assert "o_big" not in json.dumps(warning)


@pytest.mark.parametrize(
    "blessing",
    [
        '<a href="https://evil.example/login">点此领取礼物</a>',
        "领奖请点 https://evil.example/login",
        "打开 www.evil.example 领取",
        "加我 evil-gift.cn 有惊喜",
        "<img src=x onerror=alert(1)>",
    ],
)
def test_a_blessing_with_a_link_or_markup_is_refused_and_nothing_is_kept(bot, blessing):
    reply = say(bot, "o_giver", "1", "送", "1", blessing)
    assert "祝福语里不能有链接或网页代码" in reply and "【2/2】" in reply
    assert "blessing" not in conversation("o_giver").answers


def test_markup_stored_before_the_rule_is_echoed_as_harmless_text(bot):
    token = share_in_chat(bot)
    Share.update(blessing='<a href="https://evil.example">点此领取</a>').execute()
    reply = say(bot, "o_friend", f"领取 {token}")
    assert "<a" not in reply and "＜a href" in reply and "＜/a＞" in reply
