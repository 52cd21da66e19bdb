"""The books always balance: over random sequences of shares, payments (some paid twice, some
notified again), claims, revokes, cancelled orders, abandoned payments and expiries, every
share bought and all of them together satisfy paid = claimed + refunded + still open, and
every refund asked of WeChat Pay is one we owe, made once (property-based, with hypothesis,
against the real server and the WeChat Pay stand-in)."""

from __future__ import annotations

import datetime as dt
import itertools

from helpers import browser, claim, say
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paying import balance_holds, open_pay_page, share_to_pay

from bot.gifting import fulfilment, shares
from storage.models import Gift, Order, Refund, Share

OPERATIONS = ["share", "pay", "pay_twice", "claim", "revoke", "cancel", "repeat", "abandon",
              "expire", "drain"]  # fmt: skip
_people = itertools.count()


def check(bot, pay) -> None:
    books = balance_holds()
    # every refund WeChat Pay holds is one of ours, for the amount we owe
    ours = {r.out_refund_no: r.amount for r in Refund.select()}
    for number, refund in pay.standin.refunds.items():
        assert ours.get(number) == refund.refund, number
    # and no more was refunded of any order than was paid for it
    for number, order in pay.standin.orders.items():
        back = sum(r.refund for r in pay.standin.refunds.values() if r.order is order)
        assert back <= (order.request.total if order.paid else 0), number
    assert books["total"]["balanced"]


def drain(bot, pay) -> None:
    bot.clock.offset += dt.timedelta(minutes=1, seconds=5)  # past backoffs and the refund rule
    bot.drain()
    for number, refund in list(pay.standin.refunds.items()):
        if refund.status == "PROCESSING":
            pay.standin.settle_refund(number, "SUCCESS")
    pay.deliver()


STEP = st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 999), st.integers(1, 3),
                 st.integers(1, 6))  # fmt: skip


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=st.lists(STEP, min_size=3, max_size=14))
def test_paid_equals_claimed_plus_refunded_plus_open_whatever_happens(pay_bot, plan):
    """Each step: an operation, which share or notification it touches (an index into those
    made so far), a quantity and a gift for a new share. The server's state carries over from
    one example to the next: the books must balance over all of it."""
    bot, pay = pay_bot
    made: list[tuple[str, str]] = []  # the shares made in this example: (token, giver)
    for operation, which, quantity, gift in plan:
        if operation == "share" or not made:
            # the server's state outlives the example: stock must not run out across them
            Gift.update(stock=Gift.committed + 10).execute()
            giver = f"o_giver{next(_people)}"
            made.append((share_to_pay(bot, giver, str(quantity), str(gift)), giver))
            continue
        token, giver = made[which % len(made)]
        share = Share.get(Share.token == token)
        if operation in ("pay", "pay_twice") and share.payment == "unpaid":
            numbers = [open_pay_page(bot, token, giver)[0]]
            if operation == "pay_twice":
                numbers.append(open_pay_page(bot, token, giver)[0])
            for number in numbers:
                pay.standin.pay(number)
            pay.deliver()
        elif operation == "claim" and shares.refusal(share, bot.clock()) is None:
            variants = {"variant": v[0]} if (v := Gift.get_by_id(share.gift_id).variants) else {}
            claim(bot, browser(bot, f"o_friend{next(_people)}"), token, **variants)
        elif operation == "revoke":
            say(bot, giver, "我送出的", "撤回 1")  # their only share: each giver shares once
        elif operation == "cancel":
            order = (
                Order.select().where((Order.share == share.id) & (Order.status == "placed")).first()
            )
            if order is not None:
                fulfilment.move(bot.services.notices, order.order_no, "cancelled", bot.clock())
        elif operation == "repeat" and pay.standin.notifications:
            notes = pay.standin.notifications
            pay.standin.repeat_notification(notes[which % len(notes)].id)
            pay.deliver()
        elif operation == "abandon":
            bot.clock.offset += dt.timedelta(minutes=16)
            bot.run(bot.services.sweep_once())
        elif operation == "expire":
            bot.clock.offset += dt.timedelta(hours=73)
            bot.run(bot.services.sweep_once())
        elif operation == "drain":
            drain(bot, pay)
        check(bot, pay)
    for _ in range(3):
        drain(bot, pay)
    check(bot, pay)
