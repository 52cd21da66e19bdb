"""Every push WeChat documents (tests/samples/), through the real callback in both modes.

A person's action gets an answer that helps; a notification of WeChat's (reports, session and
card events, menu events whose pictures or places follow as messages) gets `success` at once;
nothing logs an error. A voice message WeChat transcribed counts as the text said, at the top
level and inside every step of a form.
"""

from __future__ import annotations

import pytest
from conftest import AES_KEY
from helpers import card_of, monday_morning, share_in_chat
from prometheus_client import REGISTRY
from wechat_sim import sample_kinds

from storage.models import Order, User

HELP = "我能帮你送礼物"
WELCOME = "欢迎来到礼物小助手"
# What a person's action is answered with; every other kind is a notification.
ANSWERS = {
    "message_text": HELP,  # "this is a test": not a word the bot knows
    "message_voice_recognition": HELP,  # "腾讯微信团队" said, as if typed
    "message_voice": "这条语音没能转成文字",
    "message_image": "收到你的图片",
    "message_video": "收到你的视频",
    "message_shortvideo": "收到你的小视频",
    "message_location": "位置只在填收货地址时用得上",
    "message_link": "收到你的链接",
    "message_file": "收到你的文件",
    "event_subscribe": WELCOME,
    "event_subscribe_qrscene": WELCOME,  # scene 123123 names no share
    "event_scan": WELCOME,  # SCENE_VALUE names no share
    "event_click": HELP,  # a key that is not on our menu
    "event_scancode_waitmsg": "不是礼物的领取码",  # WeChat shows "receiving…" until we answer
}
NOTIFICATIONS = sorted(set(sample_kinds()) - set(ANSWERS))
MODES = pytest.mark.parametrize("aes_key", ["", AES_KEY], ids=["plaintext", "safe-mode"])


def metric_count(name: str) -> float:
    """A counter's total over all its labels, as this process counted it."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == name
    )


def test_every_documented_kind_is_either_answered_or_a_notification():
    assert set(ANSWERS) <= set(sample_kinds())
    assert len(NOTIFICATIONS) >= 30, NOTIFICATIONS


@MODES
def test_every_push_gets_a_helpful_answer_or_success_and_nothing_logs_an_error(
    bot_factory, aes_key, log_lines, transcript
):
    bot = bot_factory(wechat={"encoding_aes_key": aes_key})
    before = metric_count("giftbot_messages_total")
    for kind in sorted(ANSWERS):
        reply = bot.wx.push_sample(kind, f"o_{kind}")
        assert reply is not None and reply["MsgType"] == "text", kind
        assert ANSWERS[kind] in reply["Content"], (kind, reply["Content"])
    bot.wx.deadline = 1.0  # a notification is acknowledged at once, far inside WeChat's 5 s
    for kind in NOTIFICATIONS:
        assert bot.wx.push_sample(kind, f"o_{kind}") is None, kind
    transcript(bot.wx)
    bad = [line for line in log_lines() if line["level"] in ("warning", "error", "critical")]
    assert bad == []
    assert metric_count("giftbot_messages_total") - before == len(ANSWERS) + len(NOTIFICATIONS)


@MODES
def test_a_follow_and_an_unfollow_are_recorded(bot_factory, aes_key):
    bot = bot_factory(wechat={"encoding_aes_key": aes_key})
    bot.wx.push_sample("event_subscribe", "o_fan")
    assert User.get_by_id("o_fan").subscribed
    assert bot.wx.push_sample("event_unsubscribe", "o_fan") is None
    assert not User.get_by_id("o_fan").subscribed


@MODES
def test_a_recipient_can_claim_by_voice_at_every_step(bot_factory, aes_key, transcript):
    bot = bot_factory(wechat={"encoding_aes_key": aes_key})
    monday_morning(bot)  # so that 明天下午 is offered
    token = share_in_chat(bot)
    said = [
        f"领取 {token}。",
        "张小红。",
        "13800138000。",
        "广东省深圳市南山区科技园南区8栋1201。",
        "明天下午。",
        "确认。",
    ]
    replies = [bot.wx.voice("o_friend", recognition=words) for words in said]
    for step, reply in enumerate(replies[:4], 1):
        assert f"【{step}/4】" in reply["Content"], reply["Content"]
    assert "请核对收货信息" in replies[4]["Content"] and "138 0013 8000" in replies[4]["Content"]
    assert "领取成功" in replies[5]["Content"]
    order = Order.get()
    assert (order.name, order.phone) == ("张小红", "+8613800138000")
    assert order.address_detail.endswith("1201")
    transcript(bot.wx)


def test_a_giver_can_share_by_voice(bot):
    for words in ("礼品。", "1。", "送。", "2。", "跳过。"):
        reply = bot.wx.voice("o_giver", recognition=words)
    assert "请核对" in reply["Content"] or "确认" in reply["Content"]
    card = card_of(bot.wx, "o_giver", bot.wx.voice("o_giver", recognition="确认！"))
    assert "/claim/" in card["Url"]


def test_a_menu_scan_of_a_claim_link_starts_the_claim(bot):
    token = share_in_chat(bot)
    link = f"{bot.config.server.public_url}/claim/{token}"
    reply = bot.wx.push_sample("event_scancode_waitmsg", "o_friend", ScanResult=link)
    assert "【1/4】" in reply["Content"] and "姓名" in reply["Content"]
