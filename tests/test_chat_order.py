"""S13/S14 in chat: the recipient's order form as a conversation over the real callback.

Every message goes through `/wechat`, signed as WeChat signs it. The bot's clock
is pinned to a Monday, 10:00 in Shanghai (`monday_morning`; it and the other steps
of a gift are in helpers.py), so "明天下午" and the offered slots are known; with
`[delivery] lead_hours = 24` the first slot is Tuesday 14:00-18:00. WeChat signs
with the real time (the callback refuses a timestamp five minutes off), so the
simulator keeps real time while the bot's clock moves; web claims name their slot
rather than lean on `first_slot`, so the suite reads the same in any local time zone.
"""

from __future__ import annotations

import datetime as dt

import pytest
from helpers import (
    ANSWERS,
    BOTH_DATABASES,
    ENTRIES,
    FORM,
    browser,
    claim,
    conversation,
    fill,
    label,
    monday_morning,
    next_monday_morning,
    say,
    share_in_chat,
    tuesday_afternoon,
    xsrf,
)
from transcripts import check_transcript
from wechat_sim import seen

from bot.forms.delivery import delivery_slots
from storage.models import Conversation, Gift, Order, Share, User

LABELS = {
    "variant": "款式",
    "name": "姓名",
    "phone": "手机",
    "address": "地址",
    "delivery": "收货时间",
}


# -- the three entries -----------------------------------------------------------


@BOTH_DATABASES
@pytest.mark.parametrize("entry", ENTRIES)
def test_each_entry_starts_the_form_with_the_gift_and_the_blessing(bot, entry):
    monday_morning(bot)
    token = share_in_chat(bot, blessing="生日快乐！")
    reply = ENTRIES[entry](bot, "o_friend", token)["Content"]
    assert "明前龙井礼盒" in reply and "生日快乐！" in reply
    assert "【1/4】" in reply and "姓名" in reply
    row = conversation("o_friend")
    assert (row.flow, row.step, row.answers, row.paused) == ("order", "name", {}, False)
    assert row.context["token"] == token
    if entry == "subscribe":
        assert User.get_by_id("o_friend").subscribed


@pytest.mark.parametrize("entry", ENTRIES)
def test_each_entry_says_at_once_why_a_share_cannot_be_claimed(bot, entry):
    monday = monday_morning(bot)
    used = share_in_chat(bot)  # one unit, claimed on the web below
    claim(bot, browser(bot, "o_first"), used, delivery=tuesday_afternoon(monday))
    old = share_in_chat(bot, number="2")
    bot.clock.offset += dt.timedelta(hours=bot.config.shares.expire_hours, minutes=1)
    fresh = share_in_chat(bot, number="6")
    first_order = Order.get(Order.recipient == "o_first").order_no
    # A QR scene that names no share is not a claim at all: the scanner is welcomed instead.
    unknown = "链接不存在或已失效" if entry == "text" else "欢迎来到礼物小助手"
    cases = [
        ("o_friend", "AAAAAAAAAAAAAAAAAAAAAA", unknown),
        ("o_giver", fresh, "你自己送出的礼物"),
        ("o_first", used, f"你已经领取过这份礼物了，订单号 {first_order}"),
        ("o_friend", used, "这份礼物已经被领完了"),
        ("o_late", old, "这份礼物已过期"),
    ]
    for openid, token, reason in cases:
        reply = ENTRIES[entry](bot, openid, token)["Content"]
        assert reason in reply, (openid, reply)
        assert "姓名" not in reply
        row = Conversation.get_or_none(Conversation.openid == openid)
        assert row is None or row.flow is None
    assert Order.select().count() == 1


# -- the steps, their prompts and their errors -----------------------------------


@BOTH_DATABASES
def test_every_step_names_its_field_with_an_example_and_how_to_go_back_or_cancel(bot):
    monday = monday_morning(bot)
    token = share_in_chat(bot)
    examples = {
        "name": "例如「张小红」",
        "phone": "例如「13800138000」",
        "address": "例如「广东省深圳市南山区科技园南区 8 栋 1201」",
        "delivery": "例如「明天下午」",
    }
    reply = say(bot, "o_friend", f"领取 {token}")
    for number, field in enumerate(ANSWERS, 1):
        assert conversation("o_friend").step == field
        assert f"【{number}/4】" in reply and LABELS[field] in reply, reply
        assert examples[field] in reply and "「返回」" in reply and "「取消」" in reply
        if field == "delivery":
            tuesday = monday + dt.timedelta(days=1)
            assert f"1. {label(tuesday, '14:00-18:00')}" in reply
            assert f"2. {label(tuesday, '18:00-21:00')}" in reply
            assert label(tuesday, "09:00-12:00") not in reply  # within lead_hours
        reply = say(bot, "o_friend", ANSWERS[field])
    assert conversation("o_friend").step == "summary"
    for row in (
        "1. 姓名：张小红",
        "2. 手机：138 0013 8000",
        "3. 地址：广东省深圳市南山区 科技园南区 8 栋 1201",
        f"4. 收货时间：{label(monday + dt.timedelta(days=1), '14:00-18:00')}",
    ):
        assert row in reply
    assert "「确认」" in reply and "「取消」" in reply


def test_a_gift_with_variants_asks_for_the_variant_first_by_number_or_name(bot):
    monday_morning(bot)
    token = share_in_chat(bot, number="3")  # 鲜花一束: 玫瑰, 向日葵, 郁金香
    reply = say(bot, "o_friend", f"领取 {token}")
    assert "【1/5】" in reply and "款式" in reply
    assert "1. 玫瑰" in reply and "2. 向日葵" in reply and "3. 郁金香" in reply
    for wrong, reason in [
        ("郁", "没有「郁」这个款式，请回复编号 1 到 3：玫瑰、向日葵、郁金香"),
        ("4", "没有「4」这个款式"),
        ("   ", "请选择款式：玫瑰、向日葵、郁金香"),
    ]:
        reply = say(bot, "o_friend", wrong)
        assert reason in reply and "1. 玫瑰" in reply  # the reason, then the question again
        assert conversation("o_friend").answers == {}
    reply = say(bot, "o_friend", "郁金香")
    assert "【2/5】" in reply and "姓名" in reply
    assert conversation("o_friend").answers == {"variant": "郁金香"}
    reply = say(bot, "o_friend", "返回")
    assert "【1/5】" in reply and conversation("o_friend").answers == {}
    reply = fill(bot, "o_friend", token, answers={"variant": "2", **ANSWERS})
    assert "1. 款式：向日葵" in reply and "2. 姓名：张小红" in reply
    say(bot, "o_friend", "确认")
    assert Order.get().variant == "向日葵"


def test_the_variant_prompt_says_how_to_go_back_or_cancel(bot):
    monday_morning(bot)
    token = share_in_chat(bot, number="3")
    say(bot, "o_friend", f"领取 {token}")
    reply = say(bot, "o_friend", "郁")  # the prompt asked again, without the intro
    prompt = reply.split("\n\n", 1)[1]
    assert "「返回」" in prompt and "「取消」" in prompt and "例如" in prompt


BAD_ANSWERS = {
    "name": [
        ("   ", "请填写收件人姓名"),
        ("张" * 21, "姓名太长：最多 20 个字（现在 21 个）"),
        ("12345", "「12345」不像人名"),
        ("www.gift.cn", "不像人名"),
    ],
    "phone": [
        ("   ", "请填写收件人手机号"),
        ("123", "123 不是中国大陆手机号"),
        ("1380013800", "不是中国大陆手机号"),
        ("010-12345678", "010-12345678 不是手机号"),
    ],
    "address": [
        ("   ", "请填写收货地址"),
        ("深圳", "地址要写到区/县：已识别 广东省深圳市"),
        ("火星基地一号楼", "没认出省市区"),
        ("深圳南山 8", "详细地址太简略"),
        ("广东省深圳市南山区" + "科" * 120, "地址太长：最多 120 个字"),
    ],
    "delivery": [
        ("   ", "请选择收货时间"),
        ("someday", "没看懂「someday」"),
        ("99", "没有第 99 个时段"),
        ("今天上午", "这个时间已经过了"),
        ("明天上午", "需提前 24 小时预约"),
        ("下下周日", "只能约 7 天以内"),
    ],
}


@pytest.mark.parametrize("field", BAD_ANSWERS)
def test_a_wrong_answer_is_asked_again_with_the_reason_and_nothing_is_stored(bot, field):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token, upto=field)
    before = conversation("o_friend").answers
    for typed, reason in BAD_ANSWERS[field]:
        reply = say(bot, "o_friend", typed)
        assert reason in reply, reply
        assert LABELS[field] in reply and "「返回」" in reply  # the same question again
        row = conversation("o_friend")
        assert row.step == field and row.answers == before
    assert Order.select().count() == 0


def test_a_closed_day_is_not_offered_and_is_refused_with_the_reason(bot_factory):
    closed = next_monday_morning(dt.datetime.now(dt.UTC)).date() + dt.timedelta(days=2)
    bot = bot_factory(delivery={"closed_dates": [closed.isoformat()]})
    monday = monday_morning(bot)
    assert monday + dt.timedelta(days=2) == closed
    token = share_in_chat(bot)
    reply = fill(bot, "o_friend", token, upto="delivery")
    assert "周二" in reply and "周三" not in reply and "周四" in reply
    reply = say(bot, "o_friend", "后天上午")
    assert f"{closed.month}月{closed.day}日 周三 上午 送不了：当天不配送" in reply
    assert "delivery" not in conversation("o_friend").answers


def test_the_slot_list_is_short_until_more_is_asked_and_a_refusal_ends_the_message(bot):
    monday = monday_morning(bot)
    token = share_in_chat(bot)
    reply = fill(bot, "o_friend", token, upto="delivery")
    sunday = label(monday + dt.timedelta(days=6), "18:00-21:00")
    assert "8. " in reply and "9. " not in reply and "回复「更多」" in reply
    assert "例如「明天下午」" in reply  # computed from what is offered, never a past date
    reply = say(bot, "o_friend", "更多")
    assert f"17. {sunday}" in reply and "delivery" not in conversation("o_friend").answers
    reply = say(bot, "o_friend", "明天上午")
    assert reply.rstrip().endswith("请回复列表里的时段编号，如 1。"), "the reason is last"
    assert "需提前 24 小时预约" in reply
    reply = say(bot, "o_friend", "17")
    assert f"4. 收货时间：{sunday}" in reply


def test_typed_delivery_times_pick_the_offered_slot(bot):
    monday = monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token, upto="delivery")
    day = {n: monday + dt.timedelta(days=n) for n in range(7)}
    offered = delivery_slots(bot.config.delivery, bot.clock().replace(tzinfo=dt.UTC))
    thursday = next(s for s in offered if s.date == day[3] and s.window == "14:00-18:00")
    cases = [
        ("明天下午", day[1], "14:00-18:00"),
        ("后天上午", day[2], "09:00-12:00"),
        ("周六上午", day[5], "09:00-12:00"),
        ("周五晚上", day[4], "18:00-21:00"),
        (f"{thursday.date.isoformat()} 14:00", day[3], "14:00-18:00"),
        ("2", day[1], "18:00-21:00"),
    ]
    for typed, date, window in cases:
        reply = say(bot, "o_friend", typed)
        assert f"4. 收货时间：{label(date, window)}" in reply, (typed, reply)
        assert conversation("o_friend").answers["delivery"] == f"{date.isoformat()} {window}"
        reply = say(bot, "o_friend", "返回")  # from the summary back to the delivery step
        assert "【4/4】收货时间" in reply and "delivery" not in conversation("o_friend").answers


# -- the moves -------------------------------------------------------------------


def test_back_goes_one_step_back_on_every_step_and_says_so_on_the_first(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    reply = say(bot, "o_friend", f"领取 {token}", "返回")
    assert "已经是第一步了" in reply and "【1/4】" in reply and "姓名" in reply
    fields = list(ANSWERS)
    for index in range(1, len(fields) + 1):
        for field in fields[:index]:
            say(bot, "o_friend", ANSWERS[field])
        reply = say(bot, "o_friend", "返回")
        back_to = fields[index - 1]
        assert f"【{index}/4】" in reply and LABELS[back_to] in reply, reply
        row = conversation("o_friend")
        assert row.step == back_to and set(row.answers) == set(fields[: index - 1])
        say(bot, "o_friend", "取消")
        say(bot, "o_friend", f"领取 {token}")


def test_edit_address_on_the_summary_goes_straight_back_to_the_summary(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token)
    before = dict(conversation("o_friend").answers)
    reply = say(bot, "o_friend", "修改 地址")
    assert "【3/4】" in reply and "收货地址" in reply and "（回复「返回」不改了）" in reply
    assert conversation("o_friend").step == "address"
    reply = say(bot, "o_friend", "深圳")
    assert "要写到区/县" in reply and conversation("o_friend").answers == before
    reply = say(bot, "o_friend", "北京市朝阳区建国路 88 号 2 单元 301")
    assert "请核对收货信息" in reply and "3. 地址：北京市朝阳区 建国路 88 号 2 单元 301" in reply
    after = conversation("o_friend").answers
    assert after["address"]["region"] == "北京市朝阳区"
    assert {k: after[k] for k in ("name", "phone", "delivery")} == {
        k: before[k] for k in ("name", "phone", "delivery")
    }
    reply = say(bot, "o_friend", "修改 地址", "返回")  # changed their mind: nothing changes
    assert "请核对收货信息" in reply and conversation("o_friend").answers == after


def test_a_number_on_the_summary_edits_that_field_and_returns_to_the_summary(bot):
    monday = monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token)
    reply = say(bot, "o_friend", "2")
    assert "【2/4】" in reply and "手机" in reply and conversation("o_friend").step == "phone"
    reply = say(bot, "o_friend", "13900139000")
    assert "2. 手机：139 0013 9000" in reply and conversation("o_friend").step == "summary"
    reply = say(bot, "o_friend", "修改 收货时间", "后天上午")
    assert f"4. 收货时间：{label(monday + dt.timedelta(days=2), '09:00-12:00')}" in reply
    reply = say(bot, "o_friend", "修改 1", "李 雷")
    assert "1. 姓名：李 雷" in reply
    reply = say(bot, "o_friend", "9")
    assert reply.startswith("请回复「确认」领取，或回复编号修改。") and "请核对收货信息" in reply
    say(bot, "o_friend", "确认")
    order = Order.get()
    assert (order.name, order.phone) == ("李 雷", "+8613900139000")
    assert (
        order.delivery_date == monday + dt.timedelta(days=2)
        and order.delivery_slot == "09:00-12:00"
    )


@pytest.mark.parametrize("word", ["确认", "继续"])
def test_a_move_word_typed_on_a_step_is_not_taken_as_the_answer(bot, word):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token)
    reply = say(bot, "o_friend", "修改 姓名", word)
    assert conversation("o_friend").answers["name"] == "张小红", reply


@BOTH_DATABASES
def test_cancel_leaves_the_link_claimable(bot):
    monday = monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token)
    reply = say(bot, "o_friend", "取消")
    assert "已取消" in reply and "仍然可以领取" in reply
    row = conversation("o_friend")
    assert (row.flow, row.answers) == (None, {})
    assert Order.select().count() == 0 and Share.get().claimed == 0
    assert Gift.get_by_id("tea-longjing").committed == 1  # still held by the share, not by them

    done = claim(bot, browser(bot, "o_friend"), token, delivery=tuesday_afternoon(monday))
    assert done.status_code == 200 and done.url.endswith(f"/claim/{token}/done")
    order = Order.get()
    assert (order.recipient_id, order.channel) == ("o_friend", "web")
    assert f"{order.delivery_date.isoformat()} {order.delivery_slot}" == tuesday_afternoon(monday)


def test_a_menu_word_pauses_the_form_and_continue_resumes_it_at_the_same_step(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token, upto="address")
    reply = say(bot, "o_friend", "礼品")
    assert "礼物清单" in reply and "已为你保留" in reply and "「继续」" in reply
    row = conversation("o_friend")
    assert row.paused and row.step == "address"

    reply = say(bot, "o_friend", ANSWERS["address"])  # not taken while paused
    assert "没填完的信息" in reply and "address" not in conversation("o_friend").answers
    assert "还没有送出礼物" in bot.wx.click("o_friend", "MY_GIFTS")["Content"]
    assert conversation("o_friend").paused

    reply = say(bot, "o_friend", "继续")
    assert reply.startswith("好的，接着填。") and "【3/4】" in reply and "收货地址" in reply
    assert not conversation("o_friend").paused
    reply = say(bot, "o_friend", ANSWERS["address"])
    assert "【4/4】收货时间" in reply
    assert set(conversation("o_friend").answers) == {"name", "phone", "address"}


def test_cancel_while_paused_drops_the_form(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token, upto="address")
    bot.wx.click("o_friend", "MY_ORDERS")
    reply = say(bot, "o_friend", "取消")
    assert "已放弃" in reply
    assert conversation("o_friend").flow is None and Share.get().claimed == 0
    assert "「继续」" not in say(bot, "o_friend", "继续")


def test_a_picture_during_a_step_is_asked_to_be_typed(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    say(bot, "o_friend", f"领取 {token}")
    reply = bot.wx.image("o_friend")["Content"]
    assert reply.startswith("请直接打字回复姓名") and "【1/4】" in reply
    reply = bot.wx.location("o_friend", "广东省深圳市南山区科技园")["Content"]
    assert reply.startswith("请直接打字回复姓名")  # only the address step takes a location
    say(bot, "o_friend", "张小红")
    reply = bot.wx.image("o_friend")["Content"]
    assert reply.startswith("请直接打字回复手机") and "【2/4】" in reply
    row = conversation("o_friend")
    assert row.step == "phone" and row.answers == {"name": "张小红"}


def test_a_location_at_the_address_step_starts_the_address_and_the_rest_is_typed(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token, upto="address")
    reply = bot.wx.location("o_friend", "广东省深圳市南山区科技园")["Content"]
    assert "已收到你发的位置：广东省深圳市南山区科技园" in reply and "8 栋 1201" in reply
    assert "address" not in conversation("o_friend").answers
    reply = say(bot, "o_friend", "8栋1201")
    assert "【4/4】收货时间" in reply
    address = conversation("o_friend").answers["address"]
    assert address["region"] == "广东省深圳市南山区" and address["detail"] == "科技园 8栋1201"
    reply = say(bot, "o_friend", "1")
    assert "3. 地址：广东省深圳市南山区 科技园 8栋1201" in reply


@BOTH_DATABASES
def test_a_form_left_alone_expires_and_the_next_message_starts_fresh(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token, upto="address")
    bot.clock.offset += dt.timedelta(minutes=29)
    assert "【4/4】收货时间" in say(bot, "o_friend", ANSWERS["address"])  # still there

    bot.clock.offset += dt.timedelta(minutes=31)
    reply = say(bot, "o_friend", "明天下午")
    assert "太久没有继续，已经作废" in reply and "请核对" not in reply
    row = conversation("o_friend")
    assert (row.flow, row.answers) == (None, {})
    assert Order.select().count() == 0 and Share.get().claimed == 0
    reply = say(bot, "o_friend", f"领取 {token}")
    assert "作废" not in reply and "【1/4】" in reply and "姓名" in reply
    assert conversation("o_friend").answers == {}


def test_the_timeout_follows_the_config(bot_factory):
    bot = bot_factory(conversation={"timeout_minutes": 5})
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token, upto="phone")
    bot.clock.offset += dt.timedelta(minutes=6)
    assert "作废" in say(bot, "o_friend", ANSWERS["phone"])
    assert conversation("o_friend").flow is None


def test_the_first_message_after_a_timeout_always_says_the_form_expired(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token, upto="delivery")
    bot.clock.offset += dt.timedelta(minutes=31)
    reply = bot.wx.text("o_friend", "1")  # the first slot, they meant
    assert reply["MsgType"] == "text" and "作废" in reply["Content"]


# -- confirming ------------------------------------------------------------------


@BOTH_DATABASES
def test_confirm_places_exactly_one_order_with_its_sms_and_the_givers_notice(bot):
    monday = monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token)
    reply = say(bot, "o_friend", "确认")
    order = Order.get()
    assert f"领取成功！订单号：{order.order_no}" in reply and "礼物：明前龙井礼盒" in reply
    assert "姓名：张小红" in reply and "手机：138 0013 8000" in reply
    tuesday = monday + dt.timedelta(days=1)
    assert (order.recipient_id, order.channel, order.gift_id) == (
        "o_friend",
        "chat",
        "tea-longjing",
    )
    assert (order.name, order.phone, order.variant) == ("张小红", "+8613800138000", "")
    assert (order.region, order.address_detail) == ("广东省深圳市南山区", "科技园南区 8 栋 1201")
    assert (order.delivery_date, order.delivery_slot) == (tuesday, "14:00-18:00")
    assert Share.get().claimed == 1 and Gift.get_by_id("tea-longjing").committed == 1
    assert conversation("o_friend").flow is None

    assert bot.drain() == 2
    (sms,) = bot.sms.received
    assert sms["phone"] == "+8613800138000" and sms["template"] == "order_placed"
    assert sms["text"] == (
        f"【礼物小助手】您的礼物订单已生成：明前龙井礼盒，订单号 {order.order_no}，"
        f"送达时间 {label(tuesday, '14:00-18:00')}。"
    )
    (notice,) = bot.fake_wechat.messages
    text = notice["text"]["content"]
    assert notice["touser"] == "o_giver" and "「明前龙井礼盒」已被好友领取" in text
    for private in ("张小红", "138", "南山", "1201"):
        assert private not in text


@BOTH_DATABASES
def test_the_givers_notice_counts_the_units_claimed_so_far(bot):
    monday_morning(bot)
    token = share_in_chat(bot, quantity="3")
    for n, friend in enumerate(("o_friend", "o_other"), 1):
        assert claim(bot, browser(bot, friend), token).status_code == 200
        bot.drain()
        notices = [m["text"]["content"] for m in bot.fake_wechat.messages
                   if m["touser"] == "o_giver"]  # fmt: skip
        assert len(notices) == n and f"（{n}/3 份已领）" in notices[-1]


def test_a_wechat_retry_of_confirm_gets_the_same_reply_and_makes_one_order(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token)
    xml = bot.wx.text_xml("o_friend", "确认")
    first, retry = bot.wx.push(xml), bot.wx.push(xml)
    assert seen(first) == seen(retry) and "领取成功" in first["Content"]
    assert Order.select().count() == 1 and Share.get().claimed == 1


def test_a_second_confirm_makes_no_second_order(bot):
    monday_morning(bot)
    token = share_in_chat(bot, quantity="2")
    fill(bot, "o_friend", token)
    say(bot, "o_friend", "确认")
    reply = say(bot, "o_friend", "确认")
    assert "领取成功" not in reply
    assert Order.select().count() == 1 and Share.get().claimed == 1


def test_a_second_confirm_is_told_the_gift_was_already_claimed(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token)
    say(bot, "o_friend", "确认")
    reply = say(bot, "o_friend", "确认")
    assert "已经领取过" in reply and Order.get().order_no in reply


def test_coming_back_to_a_claimed_gift_says_so_with_the_order_number(bot):
    monday_morning(bot)
    token = share_in_chat(bot, quantity="2")
    fill(bot, "o_friend", token)
    say(bot, "o_friend", "确认")
    order_no = Order.get().order_no
    for entry in ENTRIES.values():
        reply = entry(bot, "o_friend", token)["Content"]
        assert f"你已经领取过这份礼物了，订单号 {order_no}" in reply
        assert conversation("o_friend").flow is None
    assert Order.select().count() == 1


def test_a_recipient_too_late_is_told_the_gift_is_gone(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_first", token)
    fill(bot, "o_second", token)
    assert "领取成功" in say(bot, "o_first", "确认")
    assert "来晚了一步，这份礼物已经被领完了" in say(bot, "o_second", "确认")
    assert Order.select().count() == 1 and Share.get().claimed == 1


def test_a_recipient_too_late_is_not_asked_to_confirm_again(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_first", token)
    fill(bot, "o_second", token)
    say(bot, "o_first", "确认")
    reply = say(bot, "o_second", "确认")
    assert "回复「确认」领取" not in reply
    assert conversation("o_second").flow is None


# -- the chat and the web meet ---------------------------------------------------


@BOTH_DATABASES
def test_claimed_on_the_web_while_the_chat_form_is_open_gives_no_second_order(bot):
    monday = monday_morning(bot)
    token = share_in_chat(bot, quantity="2")
    fill(bot, "o_friend", token)
    phone = browser(bot, "o_friend")
    assert claim(bot, phone, token, delivery=tuesday_afternoon(monday)).url.endswith("/done")
    web_order = Order.get()
    reply = say(bot, "o_friend", "确认")
    assert f"你已经领取过这份礼物了，订单号 {web_order.order_no}" in reply
    assert conversation("o_friend").flow is None
    assert Order.select().count() == 1 and Share.get().claimed == 1
    assert Order.get().channel == "web"


@BOTH_DATABASES
def test_a_web_form_opened_before_ordering_in_chat_makes_no_second_order(bot):
    monday = monday_morning(bot)
    token = share_in_chat(bot, quantity="2")
    phone = browser(bot, "o_friend")
    form_page = phone.get(f"{bot.url}/claim/{token}/form", timeout=10)  # started on the web
    fill(bot, "o_friend", token)
    say(bot, "o_friend", "确认")
    chat_order = Order.get()
    data = FORM | {"delivery": tuesday_afternoon(monday), "_xsrf": xsrf(form_page)}
    late = phone.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10)
    assert late.url.endswith(f"/claim/{token}/done") and chat_order.order_no in late.text
    again = phone.get(f"{bot.url}/claim/{token}/form", timeout=10)
    assert again.url.endswith("/done") and chat_order.order_no in again.text
    assert Order.select().count() == 1 and Order.get().channel == "chat"
    assert Share.get().claimed == 1


@BOTH_DATABASES
def test_the_order_its_sms_and_the_notice_are_the_same_whichever_way_the_form_was_filled(bot):
    monday = monday_morning(bot)
    web_token, chat_token = share_in_chat(bot), share_in_chat(bot)
    claim(bot, browser(bot, "o_web"), web_token, delivery=tuesday_afternoon(monday))
    typed = {**FORM, "delivery": "1"}  # the web form's very text, and the first slot
    fill(bot, "o_chat", chat_token, answers=typed)
    say(bot, "o_chat", "确认")
    web = Order.get(Order.recipient == "o_web")
    chat = Order.get(Order.recipient == "o_chat")
    same = ("gift", "variant", "name", "phone", "region", "address_detail", "delivery_date")
    for field in (*same, "delivery_slot", "status"):
        assert getattr(web, field) == getattr(chat, field), field
    assert (web.channel, chat.channel) == ("web", "chat")

    bot.drain()
    sms = {s["params"]["order_no"]: s for s in bot.sms.received}
    web_sms, chat_sms = sms[web.order_no], sms[chat.order_no]
    assert web_sms["text"].replace(web.order_no, "<no>") == chat_sms["text"].replace(
        chat.order_no, "<no>"
    )
    assert web_sms["params"] | {"order_no": ""} == chat_sms["params"] | {"order_no": ""}
    assert (web_sms["phone"], web_sms["template"]) == (chat_sms["phone"], chat_sms["template"])
    web_notice, chat_notice = bot.fake_wechat.messages
    assert web_notice == chat_notice


# -- transcripts of the main paths -----------------------------------------------


def test_transcript_claim_in_chat(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    bot.wx.transcript.clear()
    fill(bot, "o_friend", token)
    say(bot, "o_friend", "确认")
    bot.wx.click("o_friend", "MY_ORDERS")
    check_transcript("claim_in_chat", bot.wx.transcript, tokens=[token])


def test_transcript_claim_in_chat_with_typos_back_and_edit(bot):
    monday_morning(bot)
    token = share_in_chat(bot, number="3")
    bot.wx.transcript.clear()
    bot.wx.scan("o_friend", token)
    for text in ("郁金香", "张小红", "138001380", "返回", "张小红", "13800138000", "深圳"):
        say(bot, "o_friend", text)
    bot.wx.location("o_friend", "广东省深圳市南山区科技园")
    for text in ("8栋1201", "明天上午", "明天下午", "修改 地址"):
        say(bot, "o_friend", text)
    for text in ("北京市朝阳区建国路 88 号 2 单元 301", "3", "13900139000", "确认"):
        say(bot, "o_friend", text)
    check_transcript("claim_in_chat_with_typos_back_and_edit", bot.wx.transcript, tokens=[token])


def test_transcript_cancel_then_claim_on_the_web(bot):
    monday = monday_morning(bot)
    token = share_in_chat(bot)
    bot.wx.transcript.clear()
    bot.wx.subscribe("o_friend", scene=token)
    say(bot, "o_friend", "张小红", "取消")
    claim(bot, browser(bot, "o_friend"), token, delivery=tuesday_afternoon(monday))
    say(bot, "o_friend", f"领取 {token}")
    check_transcript("cancel_then_claim_on_the_web", bot.wx.transcript, tokens=[token])


def test_transcript_pause_and_continue(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    bot.wx.transcript.clear()
    fill(bot, "o_friend", token, upto="address")
    bot.wx.image("o_friend")
    say(bot, "o_friend", "礼品", "你好")
    bot.wx.click("o_friend", "MY_ORDERS")
    say(bot, "o_friend", "继续", ANSWERS["address"], "后天上午", "确认")
    check_transcript("pause_and_continue", bot.wx.transcript, tokens=[token])
