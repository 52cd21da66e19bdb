"""The giver pays ([payments] mode "wechatpay"): the whole story against the WeChat Pay
stand-in — the pay link, the JSAPI order, the notification, the card, the claim, the refund
of what nobody claimed — and the abandoned payment, revokes, cancels, refund failures."""

from __future__ import annotations

import base64
import datetime as dt

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from helpers import browser, claim, monday_morning, say
from paying import (
    balance_holds,
    open_pay_page,
    share_to_pay,
)

from storage.models import Gift, Refund, Share


def test_a_paid_share_end_to_end_card_claim_and_refund_of_the_rest_at_expiry(pay_bot, pay_keys):
    bot, pay = pay_bot
    monday_morning(bot)
    price = Gift.get_by_id("tea-longjing").price
    before = Gift.get_by_id("tea-longjing").committed
    token = share_to_pay(bot, quantity="2")
    share = Share.get(Share.token == token)
    assert (share.payment, share.unit_price) == ("unpaid", price)
    assert Gift.get_by_id("tea-longjing").committed == before + 2  # held while unpaid

    friend = browser(bot, "o_friend")
    page = friend.get(f"{bot.url}/claim/{token}", timeout=10)
    assert "等送礼人付款" in page.text and f"/claim/{token}/form" not in page.text
    assert "等送礼人付款" in say(bot, "o_friend", f"领取 {token}")

    number, bridge = open_pay_page(bot, token)
    order = pay.standin.orders[number].request
    assert (order.total, order.openid) == (2 * price, "o_giver")
    assert order.notify_url == f"{bot.url}/pay/notify"
    signed = (
        f"{bridge['appId']}\n{bridge['timeStamp']}\n{bridge['nonceStr']}\n{bridge['package']}\n"
    )
    pay_keys.merchant.public_key().verify(
        base64.b64decode(bridge["paySign"]), signed.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert bridge["signType"] == "RSA" and bridge["package"].startswith("prepay_id=wx")

    pay.standin.pay(number)
    assert [a.status for a in pay.deliver()] == [204]
    share = Share.get(Share.token == token)
    assert share.payment == "paid"
    assert share.expires_at > bot.clock() + dt.timedelta(hours=71)
    bot.drain()
    card = [m for m in bot.fake_wechat.messages if m["touser"] == "o_giver"]
    assert len(card) == 1 and f"{bot.url}/claim/{token}" in card[0]["text"]["content"]

    assert claim(bot, friend, token).status_code == 200  # redirected to the confirmation
    assert Share.get(Share.token == token).claimed == 1
    balance_holds()

    bot.clock.offset += dt.timedelta(hours=73)
    bot.run(bot.services.sweep_once())
    bot.drain()
    (refund,) = Refund.select()
    assert (refund.reason, refund.units, refund.amount) == ("expired", 1, price)
    at_pay = pay.standin.refunds[refund.out_refund_no]
    assert at_pay.refund == price and at_pay.order.request.out_trade_no == number
    assert Refund.get().status == "processing"
    pay.standin.settle_refund(refund.out_refund_no, "SUCCESS")
    assert [a.status for a in pay.deliver()] == [204]
    assert Refund.get().status == "success"
    assert Gift.get_by_id("tea-longjing").committed == before + 1  # the claimed unit stays
    books = balance_holds()
    assert books["total"] == {
        "paid": 2 * price, "claimed": price, "refunded": price, "open": 0,
        "refunds_done": price, "balanced": True,
    }  # fmt: skip
