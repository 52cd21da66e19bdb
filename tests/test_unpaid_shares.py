"""No gift without its payment (the second review's F1): in [payments] mode "wechatpay" a
share nobody paid for is never joined, drawn, claimed or ordered, whatever the path (chat,
page, verified mobile, draw, surprise); once its hold ends it is over, its stock back and its
page saying so. Each on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from helpers import DESKTOP_UA, FORM, browser, first_slot, monday_morning, say, xsrf
from paying import balance_holds, pay_for

from storage.models import DrawEntry, Gift, MobileCode, Order, Outbox, Share

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


def unpaid_share(bot, *dialogue: str) -> Share:
    reply = say(bot, "o_giver", "1", *dialogue, "确认")
    token = reply.split("/pay/")[1].split()[0]
    share = Share.get(Share.token == token)
    assert share.payment == "unpaid", reply
    return share


def join_on_page(bot, openid: str, token: str):
    phone = browser(bot, openid)
    page = phone.get(f"{bot.url}/claim/{token}", timeout=10)
    assert "参与抽奖</button>" not in page.text, "an unpaid draw offers no join button"
    value = xsrf(page) if "_xsrf" in page.text else "0f" * 16
    phone.cookies.set("_xsrf", value)
    return phone.post(f"{bot.url}/claim/{token}/join", data={"_xsrf": value}, timeout=10)


def ask_code(bot, token: str, mobile: str = "13700137000"):
    session = requests.Session()
    session.headers["User-Agent"] = DESKTOP_UA
    page = session.get(f"{bot.url}/claim/{token}/mobile", timeout=10)
    value = xsrf(page) if "_xsrf" in page.text else "0f" * 16
    session.cookies.set("_xsrf", value)
    data = {"_xsrf": value, "phone": mobile}
    return session.post(f"{bot.url}/claim/{token}/mobile", data=data, timeout=10)


def order_on_page(bot, openid: str, token: str):
    """The order form posted as a script would, whether or not the page offered one."""
    phone = browser(bot, openid)
    page = phone.get(f"{bot.url}/claim/{token}/form", timeout=10)
    value = xsrf(page) if "_xsrf" in page.text else "0f" * 16
    phone.cookies.set("_xsrf", value)
    data = FORM | {"delivery": first_slot(bot), "_xsrf": value}
    return phone.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10)


def nothing_was_given(share: Share) -> None:
    assert DrawEntry.select().where(DrawEntry.share == share.id).count() == 0
    assert Order.select().count() == 0
    assert MobileCode.select().count() == 0
    assert not Outbox.select().where(Outbox.key.startswith("sms:order")).exists()
    balance_holds()


def test_an_unpaid_draw_is_never_joined_drawn_or_ordered_and_lapses_with_its_stock(pay_bot):
    """The review's reproduction: 1, 抽奖, 3, 跳过, 6分钟后, 确认, and nobody pays."""
    bot, _ = pay_bot
    monday_morning(bot)
    before = Gift.get_by_id("tea-longjing").committed
    share = unpaid_share(bot, "抽奖", "3", "跳过", "6分钟后")
    assert Gift.get_by_id("tea-longjing").committed == before + 3  # held for the payment

    assert "付款" in say(bot, "o_follower", f"领取 {share.token}")  # in chat: not ready
    assert join_on_page(bot, "o_visitor", share.token).status_code == 409
    assert ask_code(bot, share.token).status_code == 400  # no code spent for nothing (F10)
    nothing_was_given(share)

    bot.clock.offset += dt.timedelta(minutes=7)  # the draw time, inside the 15-minute hold
    bot.run(bot.services.sweep_once())
    bot.drain()
    assert Share.get_by_id(share.id).drawn_at is None
    nothing_was_given(share)

    bot.clock.offset += dt.timedelta(minutes=9)  # the hold ends unpaid
    bot.run(bot.services.sweep_once())
    bot.drain()
    lapsed = Share.get_by_id(share.id)
    assert (lapsed.payment, lapsed.released, lapsed.drawn_at) == ("lapsed", True, None)
    assert Gift.get_by_id("tea-longjing").committed == before
    assert "失效" in say(bot, "o_follower", f"领取 {share.token}")
    page = browser(bot, "o_visitor").get(f"{bot.url}/claim/{share.token}", timeout=10)
    assert "失效" in page.text and "参与抽奖</button>" not in page.text
    assert join_on_page(bot, "o_visitor", share.token).status_code == 409
    bot.clock.offset += dt.timedelta(days=2)  # however long after
    bot.run(bot.services.sweep_once())
    assert Share.get_by_id(share.id).drawn_at is None
    nothing_was_given(share)


@pytest.mark.parametrize("kind", ["送", "惊喜"])
def test_an_unpaid_gift_or_surprise_is_never_claimed_on_the_page_in_chat_or_by_mobile(
    pay_bot, kind
):
    bot, _ = pay_bot
    monday_morning(bot)
    share = unpaid_share(bot, kind, "2", "跳过")
    assert "付款" in say(bot, "o_friend", f"领取 {share.token}")
    assert order_on_page(bot, "o_web", share.token).status_code == 409
    assert ask_code(bot, share.token).status_code == 400
    nothing_was_given(share)
    bot.clock.offset += dt.timedelta(minutes=16)
    bot.run(bot.services.sweep_once())
    assert "失效" in say(bot, "o_friend", f"领取 {share.token}")
    assert order_on_page(bot, "o_web", share.token).status_code == 409
    nothing_was_given(share)


def test_a_lapsed_share_cannot_be_revoked_and_says_why(pay_bot):
    bot, _ = pay_bot
    unpaid_share(bot, "送", "1", "跳过")
    bot.clock.offset += dt.timedelta(minutes=16)
    bot.run(bot.services.sweep_once())
    assert "没有付款" in say(bot, "o_giver", "我送出的", "撤回 1")


def test_a_draw_paid_after_its_time_is_drawn_as_long_after_the_payment(pay_bot):
    """Nobody could join while it waited for the payment, so the draw time moves: as long
    after the payment as the giver asked after its creation."""
    bot, pay = pay_bot
    monday_morning(bot)
    share = unpaid_share(bot, "抽奖", "1", "跳过", "6分钟后")
    asked = share.draw_at - share.created_at
    bot.clock.offset += dt.timedelta(minutes=10)  # paid within the hold, after the draw time
    paid_at = bot.clock()
    pay_for(bot, pay, share.token)
    paid = Share.get_by_id(share.id)
    assert paid.payment == "paid"
    assert paid_at <= paid.draw_at - asked <= paid_at + dt.timedelta(seconds=5)
    bot.run(bot.services.sweep_once())
    assert Share.get_by_id(share.id).drawn_at is None  # friends may join now
    assert "参与" in say(bot, "o_friend", f"领取 {share.token}")
    bot.clock.offset += asked + dt.timedelta(minutes=1)
    bot.run(bot.services.sweep_once())
    drawn = Share.get_by_id(share.id)
    assert drawn.drawn_at is not None and drawn.quantity == 1
    balance_holds()
