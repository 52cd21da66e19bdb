"""Placing an order, written once as SQL (storage/prebuilt.py): a claim's last message ran five
queries built by peewee, which cost more than the claim's every other step.

Usage (in the claim's transaction)::

    share = share_locked(token, openid) # FOR UPDATE on PostgreSQL (SQLite: the writer's lock),
                                        # openid's order read with it (share_reads.order_of)
    order_id = insert_order(Order(order_no=…, share=…, …))   # None: a unique key was taken
"""

from __future__ import annotations

import functools

from storage import prebuilt, share_reads
from storage.models import Order, Share

_ORDER_FIELDS = [f for f in Order._meta.sorted_fields if f.name != "id"]


@prebuilt.statements
@functools.cache
def _statements(postgres: bool) -> dict[str, str]:
    p = "%s" if postgres else "?"
    lock = " FOR UPDATE OF s" if postgres else ""  # SQLite: the writer holds the only write lock
    names = ", ".join(f'"{f.column_name}"' for f in _ORDER_FIELDS)
    return {
        "share_locked": f"SELECT {share_reads.with_order('s', 'o', p)} WHERE s.token = {p}{lock}",
        # Either unique key taken (the number, or this share's order of this person) adds
        # nothing and returns no row: the caller tells which.
        "insert_order": f'INSERT INTO "order" ({names}) '
        f"VALUES ({', '.join([p] * len(_ORDER_FIELDS))}) ON CONFLICT DO NOTHING RETURNING id",
    }


def share_locked(token: str, openid: str) -> Share | None:
    """The share with this token, locked until the transaction ends (its gift not loaded);
    the order of `openid` from it read with it, for `share_reads.order_of`. Should the lock be
    waited for while the holder makes this person's order, that order is not seen here
    (PostgreSQL rechecks the locked share, not the order joined to it); the unique key on
    (share, recipient) refuses the second order then (bot/gifting/orders.py). The person's
    own row, touched before, already makes their two submits wait for each other."""
    return share_reads.share_row_and_order(prebuilt.run("share_locked", (openid, token)), openid)


def insert_order(order: Order) -> int | None:
    """Insert `order` (its defaults filled in by the model); its id, or None when its number
    or its share and recipient are taken already. Sets `order.id`."""
    data = order.__data__
    params = [f.db_value(data.get(f.name)) for f in _ORDER_FIELDS]
    row = prebuilt.run("insert_order", params).fetchone()
    if row is None:
        return None
    order.id = row[0]
    order._dirty.clear()
    return order.id
