"""One view of a share for every page (bot/gifting/facts.py): the plain page, the draw page,
the surprise page, the page outside WeChat and the giver's status page say the same of it,
and words about money appear only where money moved. Each case is one the review of issue 24
found wrong."""

from __future__ import annotations

import datetime as dt
import re

import requests
from helpers import DESKTOP_UA, browser, confirm_card, monday_morning, say, share_in_chat
from paying import pay_for

from storage.models import Share


def page(bot, openid: str | None, token: str, desktop: bool = False) -> str:
    if desktop:
        session = requests.Session()
        session.headers["User-Agent"] = DESKTOP_UA
    else:
        session = browser(bot, openid)
    answer = session.get(f"{bot.url}/claim/{token}", timeout=10)
    assert answer.status_code == 200, answer.text
    return re.sub(r"\s+", " ", answer.text)


def draw_in_chat(bot, winners: str) -> str:
    for text in ("1", "抽奖", winners, "跳过", "跳过"):
        bot.wx.text("o_giver", text)
    return confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]


def unpaid(bot, *dialogue: str) -> str:
    reply = say(bot, "o_giver", "1", *dialogue, "确认")
    return reply.split("/pay/")[1].split()[0]


def test_a_withdrawn_share_shows_no_expiry_on_any_page(bot):
    monday_morning(bot)
    token = share_in_chat(bot, quantity="2")
    say(bot, "o_giver", "我送出的", "撤回 1")
    friend = page(bot, "o_friend", token)
    assert "已撤回" in friend and "有效期" not in friend
    outside = page(bot, None, token, desktop=True)
    assert "已撤回" in outside and "有效期" not in outside and "获取验证码" not in outside
    status = page(bot, "o_giver", token)
    assert "你已撤回这份礼物" in status and "有效期" not in status


def test_an_unpaid_share_shows_no_validity_and_its_lapse_and_withdrawal_speak_of_no_refund(
    pay_bot,
):
    bot, _ = pay_bot
    monday_morning(bot)
    token = unpaid(bot, "送", "2", "跳过")
    friend = page(bot, "o_friend", token)
    assert "等送礼人付款" in friend and "有效期" not in friend  # the hold is not its validity
    bot.clock.offset += dt.timedelta(minutes=16)
    bot.run(bot.services.sweep_once())
    listed = say(bot, "o_giver", "我送出的")
    assert "没有付款，已失效" in listed and "退" not in listed.split("\n")[1]
    status = page(bot, "o_giver", token)
    assert "已失效" in status and "退款" not in status and "已退回" not in status
    other = unpaid(bot, "送", "2", "跳过")
    revoked = say(bot, "o_giver", "我送出的", "撤回 1")
    assert "你还没有付款，不会扣款" in revoked and "退" not in revoked
    assert Share.get(Share.token == other).revoked_at is not None


def test_a_paid_withdrawal_names_the_refund_it_makes(pay_bot):
    bot, pay = pay_bot
    monday_morning(bot)
    token = unpaid(bot, "送", "2", "跳过")
    pay_for(bot, pay, token)
    revoked = say(bot, "o_giver", "我送出的", "撤回 1")
    assert "¥336.00 会原路退款给你" in revoked
    assert "已退款 ¥336.00" in page(bot, "o_giver", token)


def test_a_draw_winners_page_says_they_won_not_first_come_first_served(bot):
    monday_morning(bot)
    token = draw_in_chat(bot, winners="1")
    say(bot, "o_winner", f"领取 {token}")
    share = Share.get(Share.token == token)
    bot.clock.offset += share.draw_at - bot.clock() + dt.timedelta(minutes=1)
    bot.run(bot.services.sweep_once())
    winner = page(bot, "o_winner", token)
    assert "恭喜你抽中了" in winner and "先到先得" not in winner
    assert "先到先得" in page(bot, "o_friend", share_in_chat(bot))


def test_the_page_outside_wechat_of_a_draw_shows_its_time_entrants_and_rule(bot):
    monday_morning(bot)
    share = Share.get(Share.token == draw_in_chat(bot, winners="2"))
    say(bot, "o_a", f"领取 {share.token}")
    outside = page(bot, None, share.token, desktop=True)
    assert "已有 <strong>1</strong> 人参与" in outside
    assert "开奖" in outside and "抽奖规则" in outside and "抽 2 位" in outside
    assert "用手机号参与抽奖" in outside and "每个手机号只能参与一次" in outside
    assert "领一份" not in outside and "验证并领取" not in outside
