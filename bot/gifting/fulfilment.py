"""Orders move forward: placed → shipped → delivered, or placed/shipped → cancelled; a shipped
order's carrier and tracking may be corrected.

Usage::

    order, outcome = ship(notices, "g261202-7kq3x", now, carrier="顺丰", tracking="SF1234")
    # outcome: "shipped" (it was placed), "corrected" (it was shipped with other ones: the
    # recipient is told the new ones, once), or "unchanged" (it already says so: nobody told)
    ship(notices, order_no, now, untracked=True)   # neither carrier nor tracking, on purpose
    move(notices, order_no, "delivered", now)
    move(notices, order_no, "cancelled", now)      # its unit goes back to the gift's stock
    # raise NoSuchOrder, WrongStatus(order) naming the order's status, or BadShipping
    known = on_record(["G261202-7KQ3X", …])        # many orders read at once, for a file

Each move is one transaction with the order's row locked, so two operators (or two
terminals) cannot move one order twice. Who is told: shipped — the recipient (SMS, and a
WeChat message with carrier and tracking); corrected — the recipient, once per correction
(the notice's outbox key names the correction); delivered — the giver; cancelled — both.
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
SHIPPED, CORRECTED, UNCHANGED = "shipped", "corrected", "unchanged"
CARRIER_MAX, TRACKING_MAX = 32, 64  # the order's columns
READ_BATCH = 500  # order numbers per query of on_record()


class NoSuchOrder(Exception):
    pass


class WrongStatus(Exception):
    """The move is not allowed from the order's status."""

    def __init__(self, order: Order, to: str):
        super().__init__(f"order {order.order_no} is {order.status}: it cannot be {to}")
        self.order, self.to = order, to


class BadShipping(Exception):
    """A carrier or tracking number the order cannot carry, or neither without `untracked`."""


def ship(
    notices: Notices,
    order_no: str,
    now: dt.datetime,
    carrier: str = "",
    tracking: str = "",
    untracked: bool = False,
    known: Order | None = None,
) -> tuple[Order, str]:
    """Ship a placed order, or correct a shipped one's carrier and tracking (an empty one stays
    as it was); the order as it is now, and SHIPPED, CORRECTED or UNCHANGED. `known`: the
    order as `on_record` read it, whose gift and share are not read again."""
    carrier, tracking = shipping(carrier, tracking, untracked)
    with write_transaction():
        order = _locked(order_no)
        if known is not None and known.id == order.id:
            order.gift, order.share = known.gift, known.share
        outcome = outcome_of(order, carrier, tracking)
        if outcome == UNCHANGED:
            return order, outcome
        was = (order.carrier, order.tracking)
        changes = {"carrier": carrier or order.carrier, "tracking": tracking or order.tracking}
        if outcome == SHIPPED:
            changes = {"status": "shipped", "shipped_at": now, "carrier": carrier,
                       "tracking": tracking}  # fmt: skip
        _write(order, changes)
        if outcome == SHIPPED:
            notices.order_shipped(order)
        else:
            notices.order_corrected(order, was)
        return order, outcome


def shipping(carrier: str, tracking: str, untracked: bool = False) -> tuple[str, str]:
    """Carrier and tracking number as an order keeps them (full-width folded, a tracking
    number without spaces); BadShipping when they cannot be kept, or are both missing while
    `untracked` does not say that is meant."""
    carrier = " ".join(unicodedata.normalize("NFKC", carrier or "").split())
    tracking = "".join(unicodedata.normalize("NFKC", tracking or "").split())
    if not (carrier or tracking or untracked):
        raise BadShipping("neither carrier nor tracking number (--no-tracking ships without)")
    if len(carrier) > CARRIER_MAX:
        raise BadShipping(f"carrier longer than {CARRIER_MAX} characters")
    if len(tracking) > TRACKING_MAX:
        raise BadShipping(f"tracking number longer than {TRACKING_MAX} characters")
    if any(unicodedata.category(ch)[0] == "C" for ch in carrier + tracking):
        raise BadShipping("control or invisible characters in carrier or tracking number")
    return carrier, tracking


def outcome_of(order: Order, carrier: str, tracking: str) -> str:
    """What shipping with these would do to the order: SHIPPED, CORRECTED or UNCHANGED;
    WrongStatus when it is delivered or cancelled."""
    if order.status == "placed":
        return SHIPPED
    if order.status != "shipped":
        raise WrongStatus(order, "shipped")
    wanted = (carrier or order.carrier, tracking or order.tracking)
    return UNCHANGED if wanted == (order.carrier, order.tracking) else CORRECTED


def on_record(order_nos: list[str]) -> dict[str, Order]:
    """The orders of these numbers (as typed), by number as printed; a few queries however
    many. What a file's rows would do is decided from these before any is locked."""
    wanted = sorted({typed(n) for n in order_nos})
    found: dict[str, Order] = {}
    for at in range(0, len(wanted), READ_BATCH):
        chunk = wanted[at : at + READ_BATCH]
        query = (
            Order.select(Order, Gift, Share)
            .join(Gift)
            .switch(Order)
            .join(Share)
            .where(Order.order_no.in_(chunk))
        )
        found |= {o.order_no: o for o in query}
    return found


def move(notices: Notices, order_no: str, to: str, now: dt.datetime) -> Order:
    """Deliver or cancel the order (`ship` ships it), tell whom it concerns; the order now."""
    with write_transaction():
        order = _locked(order_no)
        if order.status not in MOVES[to]:
            raise WrongStatus(order, to)
        if to == "delivered":
            _write(order, {"status": to, "delivered_at": now})
            notices.order_delivered(order)
        else:
            _write(order, {"status": to, "cancelled_at": now})
            share = locked(Share.select().where(Share.id == order.share_id)).get()
            refund = life.return_unit(share, order, now)  # the share keeps the claim on record
            notices.order_cancelled(order, refund=refund)  # money spoken of only when paid
        return order


def _locked(order_no: str) -> Order:
    order = locked(Order.select().where(Order.order_no == typed(order_no))).first()
    if order is None:
        raise NoSuchOrder(order_no)
    return order


def _write(order: Order, changes: dict) -> None:
    Order.update(**changes).where(Order.id == order.id).execute()
    for name, value in changes.items():
        setattr(order, name, value)
    if "gift" not in order.__rel__:  # what the notices name; already read when `known`
        order.gift, order.share = Gift.get_by_id(order.gift_id), Share.get_by_id(order.share_id)


def typed(order_no: str) -> str:
    """The order number as printed: "g261202 - 7kq3x" and "Ｇ２６１２０２－７ＫＱ３Ｘ" read alike."""
    return "".join(unicodedata.normalize("NFKC", order_no).split()).upper()
