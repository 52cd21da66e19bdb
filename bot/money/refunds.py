"""Money going back to a giver: one `Refund` row per cause, written in the transaction that
caused it and sent through the outbox (`wechatpay_refund`, by bot/money/paydesk.py), taken
from the payment that made the share paid.

Usage::

    charge = charging_order(share.id)      # the attempt whose payment made the share paid
    add_refund(charge, share, 2, 33600, "revoked", f"revoked:{share.id}", now)   # or None
    swap_refunded(order.id)                # fen already back for a unit swapped cheaper
"""

from __future__ import annotations

import datetime as dt
import secrets

import peewee

from bot.outgoing.outbox import enqueue
from storage.db import db
from storage.models import PayOrder, Refund, Share

REFUND = "wechatpay_refund"  # the outbox kind


def swap_refunded(order_id: int) -> int:
    """Fen refunded because this order's unit was taken as a cheaper gift (0 when none)."""
    amount = Refund.select(Refund.amount).where(Refund.cause == f"swapped:{order_id}").scalar()
    return amount or 0


def charging_order(share_id: int) -> PayOrder | None:
    """The attempt whose payment made the share paid (not one refunded as a duplicate)."""
    again = Refund.select(Refund.pay_order).where(Refund.reason.in_(("duplicate", "late")))
    return (
        PayOrder.select()
        .where(
            (PayOrder.share == share_id) & (PayOrder.status == "paid") & PayOrder.id.not_in(again)
        )
        .order_by(PayOrder.paid_at, PayOrder.id)
        .first()
    )


def add_refund(
    charge: PayOrder, share: Share, units: int, amount: int, reason: str, cause: str,
    now: dt.datetime,
) -> Refund | None:  # fmt: skip
    """One refund per cause, queued in this transaction; None when the cause had one."""
    if Refund.select().where(Refund.cause == cause).exists():
        return None
    number = f"R{now:%y%m%d%H%M%S}{secrets.token_hex(6).upper()}"
    try:
        with db.atomic():  # a savepoint: a twin cause from another worker loses here
            refund = Refund.create(
                cause=cause, out_refund_no=number, pay_order=charge.id, share=share.id,
                units=units, amount=amount, reason=reason, created_at=now, updated_at=now,
            )  # fmt: skip
    except peewee.IntegrityError:
        return None
    enqueue(REFUND, f"pay:refund:{number}", {"out_refund_no": number})
    return refund
