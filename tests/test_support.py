"""A way to a human (issue 25): 人工 and 客服 hand the conversation to WeChat's customer service
([support] human = true: a transfer_customer_service reply) or answer with [support] contact;
帮助 lists them, and names 继续 while a form waits."""

from __future__ import annotations

from helpers import fill, say, share_in_chat
from wechat_sim import ACCOUNT

from storage.models import Conversation

CONTACT = "客服电话 400-800-1234（工作日 9:00-18:00）"


def test_human_and_kefu_answer_with_the_contact_when_nobody_is_at_the_account(bot_factory):
    bot = bot_factory(support={"contact": CONTACT})
    for word in ("人工", "客服", " 客服 "):
        reply = bot.wx.text("o_a", word)
        assert reply["MsgType"] == "text" and CONTACT in reply["Content"], word


def test_without_a_contact_the_answer_says_nobody_is_there(bot_factory):
    bot = bot_factory(support={"contact": ""})
    reply = say(bot, "o_a", "人工")
    assert "暂时没有人工客服" in reply and "400" not in reply


def test_with_a_human_at_the_account_the_conversation_goes_to_customer_service(bot_factory):
    bot = bot_factory(support={"human": True, "contact": CONTACT})
    token = share_in_chat(bot)
    fill(bot, "o_friend", token, upto="address")
    reply = bot.wx.text("o_friend", "客服")
    assert reply["MsgType"] == "transfer_customer_service"
    assert reply["ToUserName"] == "o_friend" and reply["FromUserName"] == ACCOUNT
    assert Conversation.get_by_id("o_friend").paused, "the form waits for them"
    assert "接着填" in say(bot, "o_friend", "继续")
    retried = bot.wx.push(bot.wx.text_xml("o_friend", "人工", msg_id=424242))
    assert retried["MsgType"] == "transfer_customer_service"
    again = bot.wx.push(bot.wx.text_xml("o_friend", "人工", msg_id=424242))
    assert again == retried, "WeChat's retry gets the same transfer back"


def test_help_lists_the_way_to_a_human_and_names_continue_while_a_form_waits(bot):
    assert "回复「人工」或「客服」" in say(bot, "o_a", "帮助")
    token = share_in_chat(bot)
    fill(bot, "o_friend", token, upto="address")
    paused = say(bot, "o_friend", "礼品")
    assert "回复「继续」接着填" in paused
    helped = say(bot, "o_friend", "帮助")  # the form was paused already: still waiting
    assert "回复「继续」接着填" in helped and "回复「人工」或「客服」" in helped
    assert "收货地址" in say(bot, "o_friend", "继续")
