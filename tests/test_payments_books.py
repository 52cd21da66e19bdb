"""The books where several shares meet: a refund comes from the share's own payment, closing
one share's attempt closes no other's, reconciliation reaches every quiet order, a refund's
state only moves forward and keeps WeChat Pay's refund id, an attempt left open by a payment
of an earlier one is closed, a share fully claimed refunds nothing, and a share withdrawn or
unknown cannot be paid. Each on SQLite and on PostgreSQL, against the WeChat Pay stand-in."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from zoneinfo import ZoneInfo

import pytest
from helpers import browser, claim, monday_morning, say, xsrf
from paying import (
    balance_holds,
    open_pay_page,
    pay_for,
    post_notify,
    share_to_pay,
    signed_notification,
    unix,
)

from bot.codes import Code
from bot.money import payments, refunds
from storage import db as storage
from storage import hot
from storage.db import write_transaction
from storage.models import Outbox, PayOrder, Refund, Share

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


def order_of(number: str) -> PayOrder:
    return PayOrder.get(PayOrder.out_trade_no == number)


def test_a_refund_is_taken_from_the_payment_of_its_own_share(pay_bot):
    bot, pay = pay_bot
    monday_morning(bot)
    first = share_to_pay(bot, quantity="2")
    first_paid = pay_for(bot, pay, first)
    second = share_to_pay(bot, quantity="2")
    second_paid = pay_for(bot, pay, second)
    say(bot, "o_giver", "我送出的")
    assert "已撤回" in say(bot, "o_giver", "撤回 1")  # the newest: the second share
    bot.drain()
    (refund,) = Refund.select()
    assert refund.share_id == Share.get(Share.token == second).id
    assert refund.pay_order_id == order_of(second_paid).id != order_of(first_paid).id
    assert pay.standin.refunds[refund.out_refund_no].order.request.out_trade_no == second_paid
    balance_holds()


def test_closing_one_shares_attempt_leaves_another_shares_open_and_found_by_reconciliation(
    pay_bot,
):
    bot, pay = pay_bot
    waiting = share_to_pay(bot)
    waiting_number, _ = open_pay_page(bot, waiting)
    pay.standin.pay(waiting_number, notify_after=3600)  # paid; its notification is lost
    other = share_to_pay(bot, giver="o_other")
    replaced, _ = open_pay_page(bot, other, giver="o_other")
    open_pay_page(bot, other, giver="o_other")  # a second attempt closes the first
    bot.drain()
    assert order_of(replaced).status == "closed"
    assert order_of(waiting_number).status == "open"
    bot.clock.offset += dt.timedelta(minutes=3)
    assert bot.run(bot.services.pay.reconcile_once()) == 2  # the paid one and the other's open
    assert Share.get(Share.token == waiting).payment == "paid"
    assert order_of(waiting_number).status == "paid"


def test_reconciliation_asks_about_every_quiet_order_a_batch_at_a_time(pay_bot):
    bot, pay = pay_bot
    count = payments.RECONCILE_BATCH + 5
    numbers = []
    for n in range(count):
        giver = f"o_giver_{n}"
        bot.run(bot.services.db.write(hot.touch_user, giver, bot.clock()))
        share = bot.run(
            bot.services.db.write(
                payments.create_unpaid, bot.config, giver, "tea-longjing", 1, "", bot.clock()
            )
        )
        attempt = bot.run(bot.services.pay.attempt(share.token, giver))
        pay.standin.pay(attempt.out_trade_no, notify_after=3600)  # notifications all lost
        numbers.append(attempt.out_trade_no)
    bot.clock.offset += dt.timedelta(minutes=3)
    assert bot.run(bot.services.pay.reconcile_once()) == payments.RECONCILE_BATCH
    assert bot.run(bot.services.pay.reconcile_once()) == 5  # the rest, not starved
    assert bot.run(bot.services.pay.reconcile_once()) == 0
    assert {order_of(n).status for n in numbers} == {"paid"}
    assert Share.select().where(Share.payment == "paid").count() == count
    balance_holds()


def test_a_refunds_state_only_moves_forward_keeps_its_refund_id_and_a_final_one_stays(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot, quantity="2")
    pay_for(bot, pay, token)
    say(bot, "o_giver", "我送出的", "撤回 1")
    bot.drain()
    refund = Refund.get()
    at_pay = pay.standin.refunds[refund.out_refund_no]
    assert refund.status == "processing" and refund.refund_id == at_pay.refund_id

    def notify(status: str) -> int:
        notice = pay.standin.ledger.refund_notice(at_pay) | {"refund_status": status}
        body, headers = signed_notification(pay, notice, unix(bot), event_type=f"REFUND.{status}")
        return post_notify(bot, body, headers).status_code

    assert notify("ABNORMAL") == 204
    assert Refund.get().status == "abnormal"
    assert notify("PROCESSING") == 204  # older news: no step back
    assert Refund.get().status == "abnormal"
    assert notify("SUCCESS") == 204
    assert notify("CLOSED") == 204  # a final state stays
    assert notify("PROCESSING") == 204
    refund = Refund.get()
    assert (refund.status, refund.refund_id) == ("success", at_pay.refund_id)
    assert not payments.settle_refund(
        bot.services.notices, refund.out_refund_no, "SUCCESS", "", bot.clock()
    )


def test_a_payment_of_an_earlier_attempt_closes_the_later_one_still_open(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot)
    earlier, bridge = open_pay_page(bot, token)
    later, _ = open_pay_page(bot, token)  # the earlier one's close is queued, not sent yet
    assert "prepay_id=" + order_of(earlier).prepay_id == bridge["package"]  # as WeChat Pay knows it
    pay.standin.pay(earlier)  # the giver paid in the first window all the same
    assert [a.status for a in pay.deliver()] == [204]
    assert Share.get(Share.token == token).payment == "paid"
    bot.drain()
    assert pay.standin.orders[later].trade_state == "CLOSED"
    assert order_of(later).status == "closed"
    with pytest.raises(ValueError):
        pay.standin.pay(later)  # no second charge possible
    assert not Refund.select().exists()
    balance_holds()


def test_a_paid_share_fully_claimed_refunds_nothing_at_its_expiry(pay_bot):
    bot, pay = pay_bot
    monday_morning(bot)
    token = share_to_pay(bot, quantity="1")
    pay_for(bot, pay, token)
    claim(bot, browser(bot, "o_friend"), token)
    bot.clock.offset += dt.timedelta(hours=73)
    bot.run(bot.services.sweep_once())
    bot.drain()
    assert Share.get(Share.token == token).released
    assert not Refund.select().exists() and not pay.standin.refunds
    assert not Outbox.select().where(Outbox.kind == refunds.REFUND).exists()
    balance_holds()


def test_a_withdrawn_unpaid_share_cannot_be_paid(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot)
    session = browser(bot, "o_giver")
    page = session.get(f"{bot.url}/pay/{token}", timeout=10)
    say(bot, "o_giver", "我送出的", "撤回 1")
    answer = session.post(f"{bot.url}/pay/{token}/order", data={"_xsrf": xsrf(page)}, timeout=10)
    assert answer.status_code == 409
    assert not PayOrder.select().exists() and not pay.standin.orders
    again = session.get(f"{bot.url}/pay/{token}", timeout=10)
    assert again.status_code == 200 and "/order" not in again.text


def test_an_unknown_pay_link_is_a_polite_404(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot)
    session = browser(bot, "o_giver")
    page = session.get(f"{bot.url}/pay/{token}", timeout=10)
    unknown = "x" * 22
    assert session.get(f"{bot.url}/pay/{unknown}", timeout=10).status_code == 404
    answer = session.post(f"{bot.url}/pay/{unknown}/order", data={"_xsrf": xsrf(page)}, timeout=10)
    assert answer.status_code == 404 and "<html" in answer.text.lower()
    assert not PayOrder.select().exists()


def test_the_hold_ends_at_its_very_end(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot)
    share = Share.get(Share.token == token)
    moment = dt.timedelta(microseconds=1)
    assert payments.pay_refusal(share, "o_giver", share.expires_at - moment) is None
    assert payments.pay_refusal(share, "o_giver", share.expires_at) == Code.PAY_LAPSED


def test_attempts_made_at_once_leave_one_payable_and_close_the_others(pay_bot):
    """Eight taps on the pay button at once (two phones, a double tap): the share's row is
    locked while its earlier attempts are closed, so every attempt but the last is closed."""
    bot, pay = pay_bot
    token = share_to_pay(bot)

    async def tap_eight_times():
        return await asyncio.gather(*[bot.services.pay.attempt(token, "o_giver") for _ in range(8)])

    numbers = {a.out_trade_no for a in bot.run(tap_eight_times())}
    closing = {
        row.payload["out_trade_no"] for row in Outbox.select().where(Outbox.kind == payments.CLOSE)
    }
    assert len(numbers) == 8 and len(numbers - closing) == 1
    bot.drain()
    (payable,) = [o for o in PayOrder.select() if o.status == "open"]
    assert {n for n, o in pay.standin.orders.items() if o.trade_state == "NOTPAY"} == {
        payable.out_trade_no
    }


def test_two_attempts_of_one_share_settled_at_once_are_one_payment_and_one_refund(pay_bot):
    """Both attempts paid at WeChat Pay, their notifications settled by two workers at once
    (each its own transaction): the share's row is locked, so one pays for the share and the
    other is refunded whole, never both taken as the payment."""
    bot, pay = pay_bot
    for giver in ("o_giver", "o_other", "o_third"):
        token = share_to_pay(bot, giver=giver)
        numbers = [open_pay_page(bot, token, giver=giver)[0] for _ in range(2)]
        for number in numbers:
            pay.standin.pay(number, notify_after=3600)
        start = threading.Barrier(2)
        outcomes = []

        def settle(number: str, start: threading.Barrier, outcomes: list) -> None:
            start.wait()
            with write_transaction():
                outcomes.append(
                    payments.settle_paid(
                        bot.services.notices, bot.config, number, f"42{number}", bot.clock()
                    )
                )
            storage.db.close()

        threads = [threading.Thread(target=settle, args=(n, start, outcomes)) for n in numbers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == ["paid", "refund"], giver
    assert Refund.select().where(Refund.reason == "duplicate").count() == 3
    balance_holds()


def test_settling_an_order_we_never_made_changes_nothing(pay_bot):
    bot, pay = pay_bot
    with write_transaction():
        outcome = payments.settle_paid(
            bot.services.notices, bot.config, "T000000000000UNKNOWN", "4200000001", bot.clock()
        )
    assert outcome == "repeat" and not PayOrder.select().exists()


def revoked_refund(bot, pay, giver: str) -> Refund:
    """A paid share of `giver`'s withdrawn: its refund, sent to WeChat Pay (processing)."""
    token = share_to_pay(bot, giver=giver, quantity="2")
    pay_for(bot, pay, token, giver=giver)
    assert "会原路退款给你" in say(bot, giver, "我送出的", "撤回 1")  # told of the money
    bot.drain()
    return Refund.get(Refund.share == Share.get(Share.token == token).id)


def test_a_refunds_news_is_told_apart_from_a_repeat(pay_bot):
    bot, pay = pay_bot
    refund = revoked_refund(bot, pay, "o_giver")

    def settle(status: str) -> bool:
        with write_transaction():
            return payments.settle_refund(
                bot.services.notices, refund.out_refund_no, status, "", bot.clock()
            )

    assert [settle(s) for s in ("PROCESSING", "ABNORMAL", "ABNORMAL", "PROCESSING")] == [
        False, True, False, False,
    ]  # fmt: skip
    assert [settle(s) for s in ("SUCCESS", "SUCCESS", "CLOSED")] == [True, False, False]
    assert Refund.get_by_id(refund.id).status == "success"


def test_news_of_one_refund_settled_at_once_never_moves_it_backwards(pay_bot):
    """WeChat Pay's SUCCESS and an older ABNORMAL handled by two workers at once (each its own
    transaction): the refund's row is locked, so SUCCESS stays whichever commits last."""
    bot, pay = pay_bot
    givers = ("o_giver", "o_other", "o_third", "o_fourth")
    refunds = [revoked_refund(bot, pay, giver) for giver in givers]
    for refund in refunds:
        start = threading.Barrier(2)

        def settle(status: str, number: str, start: threading.Barrier) -> None:
            storage.db.connect(reuse_if_open=True)  # both ready before either reads
            start.wait()
            with write_transaction():
                payments.settle_refund(bot.services.notices, number, status, "", bot.clock())
            storage.db.close()

        threads = [
            threading.Thread(target=settle, args=(status, refund.out_refund_no, start))
            for status in ("SUCCESS", "ABNORMAL")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert [Refund.get_by_id(r.id).status for r in refunds] == ["success"] * len(givers)


def test_an_order_is_quiet_once_it_is_as_old_as_the_wait_and_asked_about_once_a_round(pay_bot):
    bot, pay = pay_bot
    number, _ = open_pay_page(bot, share_to_pay(bot))
    made = order_of(number).created_at
    every = dt.timedelta(minutes=2)

    def quiet(now: dt.datetime) -> list[str]:
        with write_transaction():
            return payments.quiet_orders(now, now - every)

    assert quiet(made + every - dt.timedelta(microseconds=1)) == []
    assert quiet(made + every) == [number]
    assert quiet(made + every) == [], "asked about this round"
    assert quiet(made + 2 * every - dt.timedelta(microseconds=1)) == []
    assert quiet(made + 2 * every) == [number], "and again a round later"


def test_reconciliation_asks_about_unfinished_refunds_and_never_a_finished_one(pay_bot):
    bot, pay = pay_bot
    unfinished = revoked_refund(bot, pay, "o_giver")
    finished = revoked_refund(bot, pay, "o_other")
    pay.standin.settle_refund(finished.out_refund_no, "SUCCESS")
    pay.standin.settle_refund(unfinished.out_refund_no, "SUCCESS", notify_after=3600)
    assert [a.status for a in pay.deliver(due_only=True)] == [204]  # the other's is lost
    assert Refund.get_by_id(finished.id).status == "success"
    bot.clock.offset += dt.timedelta(minutes=3)
    assert bot.run(bot.services.pay.reconcile_once()) == 1  # the unfinished one alone
    assert Refund.get_by_id(unfinished.id).status == "success"
    bot.clock.offset += dt.timedelta(minutes=3)
    assert bot.run(bot.services.pay.reconcile_once()) == 0


def test_a_refund_is_quiet_once_its_last_news_is_as_old_as_the_wait(pay_bot):
    bot, pay = pay_bot
    refund = revoked_refund(bot, pay, "o_giver")
    heard = refund.updated_at
    with write_transaction():
        assert payments.quiet_refunds(bot.clock(), heard - dt.timedelta(microseconds=1)) == []
        assert payments.quiet_refunds(bot.clock(), heard) == [refund.out_refund_no]


def test_the_paid_notice_names_the_expiry_counted_from_the_payment(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot)
    held_until = Share.get(Share.token == token).expires_at
    pay_for(bot, pay, token)
    bot.drain()
    expires = Share.get(Share.token == token).expires_at
    assert expires - held_until > dt.timedelta(hours=71)

    def shown(when: dt.datetime) -> str:
        local = when.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(bot.config.delivery.timezone))
        return local.strftime("%Y年%-m月%-d日 %H:%M")

    share_id = Share.get(Share.token == token).id  # its text, where WeChat takes no card
    text = json.dumps(
        Outbox.get(Outbox.key == f"notice:paid:{share_id}").payload, ensure_ascii=False
    )
    assert f"{shown(expires)} 前未领取的部分会自动退款" in text
