"""The giver pays ([payments] mode "wechatpay"): the whole story against the WeChat Pay
stand-in — the pay link, the JSAPI order, the notification, the card, the claim, the refund
of what nobody claimed — and the abandoned payment, revokes, cancels, refund failures; each on
SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys

import pytest
import requests
from conftest import merge
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from fakes.wechatpay import FakeWeChatPay
from helpers import browser, claim, monday_morning, say, xsrf
from paying import (
    balance_holds,
    open_pay_page,
    pay_for,
    pay_overrides,
    share_to_pay,
)

from bot.gifting import fulfilment, shares
from bot.money import paybooks
from bot.render import money
from storage.models import Gift, Order, Outbox, PayOrder, Refund, Share

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


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
    sent = [m for m in bot.fake_wechat.messages if m["touser"] == "o_giver"]
    assert len(sent) == 1 and sent[0]["msgtype"] == "news"  # the card to forward
    (card,) = sent[0]["news"]["articles"]
    assert card["url"] == f"{bot.url}/claim/{token}" and "生日快乐" in card["description"]

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


def settle_all(bot, pay, status: str = "SUCCESS") -> None:
    """The bank's word on every refund WeChat Pay holds, and its notifications delivered."""
    for number, refund in pay.standin.refunds.items():
        if refund.status == "PROCESSING":
            pay.standin.settle_refund(number, status)
    assert all(a.status == 204 for a in pay.deliver())


def test_only_the_giver_may_open_the_pay_page_or_order(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot)
    friend = browser(bot, "o_friend")
    page = friend.get(f"{bot.url}/pay/{token}", timeout=10)
    assert page.status_code == 403 and "只有送出这份礼物的人" in page.text
    friend.cookies.set("_xsrf", "00ff" * 8)  # a version-1 token: the form's value is the cookie's
    answer = friend.post(f"{bot.url}/pay/{token}/order", data={"_xsrf": "00ff" * 8}, timeout=10)
    assert answer.status_code == 403 and "只有送出" in answer.json()["error"]
    assert not PayOrder.select().exists()
    assert requests.get(f"{bot.url}/pay/{token}", allow_redirects=False).status_code == 302
    assert requests.get(f"{bot.url}/pay/nosuchtoken0000000000000").status_code == 404
    assert not pay.standin.orders


def test_the_pay_page_opened_twice_makes_one_order_per_attempt_and_never_two_charges(pay_bot):
    bot, pay = pay_bot
    price = Gift.get_by_id("tea-longjing").price
    token = share_to_pay(bot)
    first, _ = open_pay_page(bot, token)
    second, _ = open_pay_page(bot, token)
    assert first != second and len(pay.standin.orders) == 2
    bot.drain()  # the first attempt is closed at WeChat Pay
    assert pay.standin.orders[first].trade_state == "CLOSED"
    assert PayOrder.get(PayOrder.out_trade_no == first).status == "closed"
    with pytest.raises(ValueError):
        pay.standin.pay(first)
    pay.standin.pay(second)
    pay.deliver()
    assert Share.get(Share.token == token).payment == "paid"

    # Two attempts paid before the first could be closed: the second payment goes back whole.
    token = share_to_pay(bot, giver="o_other")
    one, _ = open_pay_page(bot, token, giver="o_other")
    two, _ = open_pay_page(bot, token, giver="o_other")
    pay.standin.pay(one)
    pay.standin.pay(two)
    pay.deliver()
    bot.drain()
    (refund,) = Refund.select().where(Refund.reason == "duplicate")
    assert refund.amount == price and pay.standin.refunds[refund.out_refund_no].refund == price
    books = balance_holds()
    assert books["total"]["paid"] - books["total"]["refunded"] == 2 * price  # one charge each


def test_an_abandoned_payment_releases_the_stock_and_closes_the_order(pay_bot):
    bot, pay = pay_bot
    before = Gift.get_by_id("tea-longjing").committed
    token = share_to_pay(bot, quantity="3")
    number, _ = open_pay_page(bot, token)
    assert Gift.get_by_id("tea-longjing").committed == before + 3
    bot.clock.offset += dt.timedelta(minutes=16)
    bot.run(bot.services.sweep_once())
    assert Gift.get_by_id("tea-longjing").committed == before
    assert Share.get(Share.token == token).payment == "lapsed"
    bot.drain()
    assert pay.standin.orders[number].trade_state == "CLOSED"
    assert PayOrder.get().status == "closed"
    session = browser(bot, "o_giver")
    assert "付款时间已过" in session.get(f"{bot.url}/pay/{token}", timeout=10).text
    assert "失效" in browser(bot, "o_friend").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert not Refund.select().exists()
    balance_holds()


def test_a_payment_whose_notification_comes_after_the_hold_ended_is_refunded_whole(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot, quantity="2")
    number, _ = open_pay_page(bot, token)
    bot.clock.offset += dt.timedelta(minutes=14)
    pay.standin.pay(number, notify_after=3600)  # paid in time; the news is late
    bot.clock.offset += dt.timedelta(minutes=2)
    bot.run(bot.services.sweep_once())  # the hold ended: lapsed, its order to be closed
    bot.drain()  # the close finds the order paid, asks, and refunds it
    (refund,) = Refund.select()
    assert (refund.reason, refund.amount) == ("late", 2 * Gift.get_by_id("tea-longjing").price)
    pay.deliver()  # the notification at last: acted on already
    assert Refund.select().count() == 1 and Share.get(Share.token == token).payment == "lapsed"
    settle_all(bot, pay)
    assert Refund.get().status == "success"
    balance_holds()


def test_a_late_notification_is_found_by_reconciliation(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot)
    number, _ = open_pay_page(bot, token)
    pay.standin.pay(number, notify_after=3600)
    assert bot.run(bot.services.pay.reconcile_once()) == 0  # too soon to ask
    bot.clock.offset += dt.timedelta(minutes=2)
    assert bot.run(bot.services.pay.reconcile_once()) == 1
    assert Share.get(Share.token == token).payment == "paid"
    bot.drain()
    assert len([m for m in bot.fake_wechat.messages if m["touser"] == "o_giver"]) == 1
    pay.deliver()  # the notification, late: a repeat
    bot.drain()
    assert len([m for m in bot.fake_wechat.messages if m["touser"] == "o_giver"]) == 1
    balance_holds()


def test_revoking_a_paid_share_refunds_its_unclaimed_units(pay_bot):
    bot, pay = pay_bot
    monday_morning(bot)
    price = Gift.get_by_id("tea-longjing").price
    token = share_to_pay(bot, quantity="3")
    pay_for(bot, pay, token)
    claim(bot, browser(bot, "o_friend"), token)
    say(bot, "o_giver", "我送出的")
    assert "已撤回" in say(bot, "o_giver", "撤回 1")
    bot.drain()
    (refund,) = Refund.select()
    assert (refund.reason, refund.units, refund.amount) == ("revoked", 2, 2 * price)
    assert pay.standin.refunds[refund.out_refund_no].refund == 2 * price
    settle_all(bot, pay)
    assert balance_holds()["total"]["refunds_done"] == 2 * price


def test_a_cancelled_order_of_a_paid_share_is_refunded(pay_bot):
    bot, pay = pay_bot
    monday_morning(bot)
    price = Gift.get_by_id("tea-longjing").price
    token = share_to_pay(bot, quantity="2")
    pay_for(bot, pay, token)
    claim(bot, browser(bot, "o_friend"), token)
    order = Order.get()
    fulfilment.move(bot.services.notices, order.order_no, "cancelled", bot.clock())
    bot.drain()
    (refund,) = Refund.select()
    assert (refund.reason, refund.units, refund.amount) == ("cancelled", 1, price)
    assert refund.cause == f"cancelled:{order.id}"
    balance_holds()
    # the share expires with one unit unclaimed: a second refund, a minute later or more
    bot.clock.offset += dt.timedelta(hours=73)
    bot.run(bot.services.sweep_once())
    bot.drain()
    assert sorted(r.reason for r in Refund.select()) == ["cancelled", "expired"]
    settle_all(bot, pay)
    assert balance_holds()["total"]["refunds_done"] == 2 * price


def test_refund_failures_are_retried_and_a_final_failure_is_visible(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot, quantity="2")
    pay_for(bot, pay, token)
    pay.standin.fail_next("refund", code="SYSTEM_ERROR", times=2)
    say(bot, "o_giver", "我送出的", "撤回 1")
    bot.drain()
    refund = Refund.get()
    assert refund.status == "pending" and "SYSTEM_ERROR" in refund.last_error
    for _ in range(2):
        bot.clock.offset += dt.timedelta(seconds=10)
        bot.drain()
    assert Refund.get().status == "processing" and len(pay.standin.refunds) == 1

    token = share_to_pay(bot, giver="o_other", quantity="2")
    pay_for(bot, pay, token, giver="o_other")
    pay.standin.fail_next("refund", code="NO_AUTH")  # refused for good: no retry
    say(bot, "o_other", "我送出的", "撤回 1")
    bot.drain()
    failed = [row for row in paybooks.listing() if row["state"] == "failed"]
    assert len(failed) == 1 and "NO_AUTH" in failed[0]["error"]
    assert Outbox.get(Outbox.kind == "wechatpay_refund", Outbox.status == "dead")
    balance_holds()  # owed, and shown: the books still balance


def test_a_refund_answered_too_late_is_retried_with_the_same_number_and_made_once(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot, quantity="2")
    pay_for(bot, pay, token)
    pay.standin.stall_next("refund", seconds=3)  # done, but answered after our 2 s timeout
    say(bot, "o_giver", "我送出的", "撤回 1")
    bot.drain()
    assert Refund.get().status == "pending" and len(pay.standin.refunds) == 1
    bot.clock.offset += dt.timedelta(seconds=10)
    bot.drain()
    assert Refund.get().status == "processing" and len(pay.standin.refunds) == 1


def test_refund_notifications_out_of_order_end_in_the_final_state(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot, quantity="2")
    pay_for(bot, pay, token)
    say(bot, "o_giver", "我送出的", "撤回 1")
    bot.drain()
    number = Refund.get().out_refund_no
    pay.standin.settle_refund(number, "ABNORMAL")
    pay.standin.settle_refund(number, "SUCCESS")
    pay.deliver(reverse=True)  # SUCCESS first, then the older ABNORMAL
    assert Refund.get().status == "success"


def test_payments_list_shows_each_payment_and_refund_with_its_state(pay_bot):
    bot, pay = pay_bot
    price = Gift.get_by_id("tea-longjing").price
    token = share_to_pay(bot, quantity="2")
    number = pay_for(bot, pay, token)
    say(bot, "o_giver", "我送出的", "撤回 1")
    bot.drain()
    path = bot.tmp_config()
    listed = cli(path, "payments", "list", "--format", "json")
    assert json.loads(listed.stdout) == [
        {
            "kind": "payment", "number": number, "share_id": Share.get().id, "amount_fen": 2 * price,
            "state": "paid", "reason": "", "created_at": listed_time(listed, 0, "created_at"),
            "updated_at": listed_time(listed, 0, "updated_at"), "error": "",
        },
        {
            "kind": "refund", "number": Refund.get().out_refund_no, "share_id": Share.get().id,
            "amount_fen": -2 * price, "state": "processing", "reason": "revoked",
            "created_at": listed_time(listed, 1, "created_at"),
            "updated_at": listed_time(listed, 1, "updated_at"), "error": "",
        },
    ]  # fmt: skip
    table = cli(path, "payments", "list").stdout
    yuan = money(2 * price)  # a person reads ¥; JSON keeps integer fen, named *_fen
    assert f"paid {yuan} = claimed ¥0.00 + refunded {yuan} + open ¥0.00" in table
    assert f"-{yuan}" in table and f" {2 * price} " not in table
    books = json.loads(cli(path, "payments", "balance", "--format", "json").stdout)
    assert books["total"]["balanced"] and books["shares"][0]["refunded_fen"] == 2 * price


def cli(path: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "bot", *args, "--config", path],
        capture_output=True, text=True, encoding="utf-8", timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def listed_time(result: subprocess.CompletedProcess, row: int, key: str) -> str:
    value = json.loads(result.stdout)[row][key]
    assert dt.datetime.fromisoformat(value).utcoffset() is not None, "a time with its offset"
    return value


def test_my_gifts_shows_an_unpaid_share_with_its_pay_link_and_then_paid(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot, quantity="2")
    listed = say(bot, "o_giver", "我送出的")
    assert "等你付款" in listed and f"{bot.url}/pay/{token}" in listed and "撤回" not in listed
    pay_for(bot, pay, token)
    listed = say(bot, "o_giver", "我送出的")
    assert "0/2 份已领" in listed and "/pay/" not in listed
    assert [row["status"] for row in shares.listing(bot.clock())] == ["open"]


def test_when_wechat_pay_refuses_the_order_the_page_says_so_and_the_next_attempt_works(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot)
    pay.standin.fail_next("jsapi", code="SYSTEM_ERROR")
    session = browser(bot, "o_giver")
    page = session.get(f"{bot.url}/pay/{token}", timeout=10)
    answer = session.post(f"{bot.url}/pay/{token}/order", data={"_xsrf": xsrf(page)}, timeout=10)
    assert answer.status_code == 502 and "微信支付暂时不可用" in answer.json()["error"]
    number = pay_for(bot, pay, token)
    assert PayOrder.get(PayOrder.out_trade_no == number).status == "paid"
    assert Share.get(Share.token == token).payment == "paid"


def test_an_unpaid_share_withdrawn_returns_its_stock_and_closes_its_order(pay_bot):
    bot, pay = pay_bot
    before = Gift.get_by_id("tea-longjing").committed
    token = share_to_pay(bot, quantity="2")
    number, _ = open_pay_page(bot, token)
    assert [row["status"] for row in shares.listing(bot.clock(), "unpaid")] == ["unpaid"]
    assert shares.listing(bot.clock(), "open") == shares.listing(bot.clock(), "expired") == []
    say(bot, "o_giver", "我送出的")
    assert "已撤回" in say(bot, "o_giver", "撤回 1")
    assert Gift.get_by_id("tea-longjing").committed == before
    bot.drain()
    assert pay.standin.orders[number].trade_state == "CLOSED"
    assert Share.get(Share.token == token).payment == "lapsed" and not Refund.select().exists()
    assert [row["status"] for row in shares.listing(bot.clock(), "revoked")] == ["revoked"]
    balance_holds()


def test_the_share_summary_names_the_total_to_pay(pay_bot):
    bot, pay = pay_bot
    price = Gift.get_by_id("tea-longjing").price
    summary = say(bot, "o_giver", "1", "送", "3", "跳过")
    assert f"合计：¥{3 * price // 100}.00" in summary and "「确认」去付款" in summary


def test_the_givers_own_claim_link_says_unpaid_and_leads_to_the_pay_page(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot)
    page = browser(bot, "o_giver").get(f"{bot.url}/claim/{token}", timeout=10)
    assert "这份礼物还没付款" in page.text and f'href="/pay/{token}"' in page.text
    assert "撤回" not in page.text
    pay_for(bot, pay, token)
    page = browser(bot, "o_giver").get(f"{bot.url}/claim/{token}", timeout=10)
    assert "还剩 1 份等好友领取" in page.text and "/pay/" not in page.text


def test_a_paid_draw_refunds_the_units_nobody_won_and_the_wins_nobody_claimed(pay_bot):
    bot, pay = pay_bot
    monday_morning(bot)
    price = Gift.get_by_id("tea-longjing").price
    reply = say(bot, "o_giver", "1", "抽奖", "3", "新年好运！", "跳过", "确认")
    token = reply.split("/pay/")[1].split()[0]
    share = Share.get(Share.token == token)
    assert (share.kind, share.payment, share.quantity) == ("draw", "unpaid", 3)
    pay_for(bot, pay, token)
    share = Share.get(Share.token == token)
    assert share.expires_at == share.draw_at + dt.timedelta(hours=bot.config.shares.expire_hours)
    assert "参与" in say(bot, "o_a", f"领取 {token}")  # one entrant for three units
    bot.clock.offset += share.draw_at - bot.clock() + dt.timedelta(minutes=1)
    bot.run(bot.services.sweep_once())
    bot.drain()
    (unwon,) = Refund.select()
    assert (unwon.reason, unwon.units, unwon.amount) == ("unwon", 2, 2 * price)
    balance_holds()
    bot.clock.offset += dt.timedelta(hours=73)  # the winner never claims
    bot.run(bot.services.sweep_once())
    bot.clock.offset += dt.timedelta(minutes=2)  # WeChat Pay's minute between refunds
    bot.drain()
    assert sorted((r.reason, r.amount) for r in Refund.select()) == [
        ("expired", price), ("unwon", 2 * price)
    ]  # fmt: skip
    assert len(pay.standin.refunds) == 2
    balance_holds()


def test_an_unpaid_draw_that_lapsed_is_never_drawn(pay_bot):
    bot, pay = pay_bot
    before = Gift.get_by_id("tea-longjing").committed
    say(bot, "o_giver", "1", "抽奖", "2", "新年好运！", "跳过", "确认")
    share = Share.get()
    bot.clock.offset += dt.timedelta(minutes=16)
    bot.run(bot.services.sweep_once())
    assert Gift.get_by_id("tea-longjing").committed == before
    bot.clock.offset += share.draw_at - bot.clock() + dt.timedelta(minutes=1)
    bot.run(bot.services.sweep_once())
    assert Share.get().drawn_at is None and Gift.get_by_id("tea-longjing").committed == before


def test_an_unpaid_share_reminds_nobody_of_a_link_that_does_not_work_yet(
    bot_factory, pay_keys, tmp_path
):
    """Reminders name the claim link: while a share waits for its payment (its stock held
    hold_minutes) neither its giver nor who opened its page is reminded, however short
    [shares] remind_hours is."""
    with FakeWeChatPay(pay_keys, retry_scale=1e-4, answer_timeout=2) as pay:
        overrides = merge(pay_overrides(tmp_path, pay_keys, pay), {"shares": {"remind_hours": 0.2}})
        bot = bot_factory(**overrides)
        token = share_to_pay(bot, quantity="2")
        browser(bot, "o_friend").get(f"{bot.url}/claim/{token}", timeout=10)
        bot.clock.offset += dt.timedelta(minutes=5)  # the hold ends within remind_hours
        bot.run(bot.services.sweep_once())
        bot.drain()
        assert Share.get().reminded_at is None
        assert [m for m in bot.fake_wechat.messages if m["touser"] in ("o_giver", "o_friend")] == []
