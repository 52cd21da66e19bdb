"""Orders move forward: placed → shipped → delivered, or placed/shipped → cancelled.

Usage::

    order = move(notices, "g261202-7kq3x", "shipped", now, carrier="顺丰", tracking="SF1234")
    move(notices, order_no, "delivered", now)
    move(notices, order_no, "cancelled", now)     # its unit goes back to the gift's stock
    # raises NoSuchOrder, or WrongStatus(order) naming the order's status

Each move is one transaction with the order's row locked, so two operators (or two
terminals) cannot move one order twice. Who is told: shipped — the recipient (SMS, and a
WeChat message with carrier and tracking); delivered — the giver; cancelled — both.
Order numbers are read as an operator may paste them: any case, spaces anywhere, full-width
characters (they are printed upper case, G261202-7KQ3X).
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from bot.gifting import life
from bot.outgoing.notices import Notices
from storage.db import locked, write_transaction
from storage.models import Gift, Order, Share

STATUSES = ("placed", "shipped", "delivered", "cancelled")  # an order's, first to last
# status → the statuses an order may move to it from
MOVES = {
    "shipped": ("placed",),
    "delivered": ("shipped",),
    "cancelled": ("placed", "shipped"),
}


class NoSuchOrder(Exception):
    pass


class WrongStatus(Exception):
    """The move is not allowed from the order's status."""

    def __init__(self, order: Order, to: str):
        super().__init__(f"order {order.order_no} is {order.status}: it cannot be {to}")
        self.order, self.to = order, to


def move(
    notices: Notices,
    order_no: str,
    to: str,
    now: dt.datetime,
    carrier: str = "",
    tracking: str = "",
) -> Order:
    """Move the order to `to`, tell whom it concerns; the order as it is now."""
    with write_transaction():
        order = locked(Order.select().where(Order.order_no == typed(order_no))).first()
        if order is None:
            raise NoSuchOrder(order_no)
        if order.status not in MOVES[to]:
            raise WrongStatus(order, to)
        changes: dict = {"status": to}
        if to == "shipped":
            changes.update(shipped_at=now, carrier=carrier.strip(), tracking=tracking.strip())
        elif to == "delivered":
            changes.update(delivered_at=now)
        else:
            changes.update(cancelled_at=now)
            share = locked(Share.select().where(Share.id == order.share_id)).get()
            life.return_unit(share, order, now)  # the share keeps the claim on record
        Order.update(**changes).where(Order.id == order.id).execute()
        for name, value in changes.items():
            setattr(order, name, value)
        order.gift, order.share = Gift.get_by_id(order.gift_id), Share.get_by_id(order.share_id)
        if to == "shipped":
            notices.order_shipped(order)
        elif to == "delivered":
            notices.order_delivered(order)
        else:  # its unit's money goes back only when it was paid for
            paid = order.share.payment == life.PAID
            notices.order_cancelled(order, refund=order.share.unit_price if paid else 0)
        return order


def typed(order_no: str) -> str:
    """The order number as printed: "g261202 - 7kq3x" and "Ｇ２６１２０２－７ＫＱ３Ｘ" read alike."""
    return "".join(unicodedata.normalize("NFKC", order_no).split()).upper()
