"""The books of the paid shares, as operators read them (`payments list`, `payments balance`)
and as the tests check them: paid = claimed + refunded + still open, per share and overall
(a unit swapped for a cheaper gift counts as claimed at what it kept).

Usage::

    books = balance()                 # {"shares": [{share_id, paid, claimed, refunded, open, …}],
                                      #  "total": {…, "balanced": True}}
    rows = listing()                  # every payment attempt and refund, with its state
"""

from __future__ import annotations

from peewee import fn

from bot.gifting.life import PAID
from bot.money.refunds import REFUND
from storage.models import Order, Outbox, PayOrder, Refund, Share, utc_text


def balance(share_id: int | None = None) -> dict:
    """Per share bought and overall, in fen: paid = claimed + refunded + open must hold.
    `refunded` counts every refund owed (whatever its state); `refunds_done` those that
    WeChat Pay confirmed."""
    rows = []
    query = Share.select().where(Share.payment != "").order_by(Share.id)
    if share_id is not None:
        query = query.where(Share.id == share_id)
    for share in query:
        paid = _sum(PayOrder.amount, (PayOrder.share == share.id) & (PayOrder.status == "paid"))
        refunded = _sum(Refund.amount, Refund.share == share.id)
        done = _sum(Refund.amount, (Refund.share == share.id) & (Refund.status == "success"))
        kept = [
            order_id
            for (order_id,) in Order.select(Order.id)
            .where((Order.share == share.id) & (Order.status != "cancelled"))
            .tuples()
        ]
        # a unit taken as a cheaper gift kept only its price: the difference was refunded
        swapped = _sum(Refund.amount, Refund.cause.in_([f"swapped:{i}" for i in kept] or [""]))
        claimed = share.unit_price * len(kept) - swapped
        still_open = (
            share.unit_price * share.left if share.payment == PAID and not share.released else 0
        )
        rows.append(
            {
                "share_id": share.id, "token": share.token, "payment": share.payment,
                "paid": paid, "claimed": claimed, "refunded": refunded, "open": still_open,
                "refunds_done": done, "balanced": paid == claimed + refunded + still_open,
            }
        )  # fmt: skip
    keys = ("paid", "claimed", "refunded", "open", "refunds_done")
    total = {k: sum(r[k] for r in rows) for k in keys}
    total["balanced"] = all(r["balanced"] for r in rows)
    return {"shares": rows, "total": total}


def _sum(column, where) -> int:
    return int(column.model.select(fn.COALESCE(fn.SUM(column), 0)).where(where).scalar() or 0)


def listing() -> list[dict]:
    """Every payment attempt and refund, oldest first, with its state; a refund the outbox
    gave up on reads `failed`, with the last error."""
    rows = []
    for order in PayOrder.select().order_by(PayOrder.id):
        rows.append(
            {
                "kind": "payment", "number": order.out_trade_no, "share_id": order.share_id,
                "amount": order.amount, "state": order.status, "reason": "",
                "created_at": utc_text(order.created_at), "updated_at": utc_text(order.paid_at or order.closed_at),
                "error": "",
            }
        )  # fmt: skip
    dead = _dead_refunds()
    for refund in Refund.select().order_by(Refund.id):
        state = refund.status
        if state == "pending" and refund.out_refund_no in dead:
            state = "failed"
        rows.append(
            {
                "kind": "refund", "number": refund.out_refund_no, "share_id": refund.share_id,
                "amount": -refund.amount, "state": state, "reason": refund.reason,
                "created_at": utc_text(refund.created_at), "updated_at": utc_text(refund.updated_at),
                "error": refund.last_error or dead.get(refund.out_refund_no, ""),
            }
        )  # fmt: skip
    return rows


def _dead_refunds() -> dict[str, str]:
    query = Outbox.select(Outbox.key, Outbox.last_error).where(
        (Outbox.kind == REFUND) & (Outbox.status == "dead")
    )
    return {key.removeprefix("pay:refund:"): error for key, error in query.tuples()}
