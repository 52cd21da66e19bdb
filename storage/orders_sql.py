"""Placing an order, written once as SQL (storage/prebuilt.py): a claim's last message ran five
queries built by peewee, which cost more than the claim's every other step.

Usage (in the claim's transaction)::

    share = share_locked(token)         # FOR UPDATE on PostgreSQL (SQLite: the writer's lock)
    order_id = insert_order(Order(order_no=…, share=…, …))   # None: a unique key was taken
"""

from __future__ import annotations

import functools

from storage import prebuilt
from storage.models import Order, Share

_ORDER_FIELDS = [f for f in Order._meta.sorted_fields if f.name != "id"]


@prebuilt.statements
@functools.cache
def _statements(postgres: bool) -> dict[str, str]:
    p = "%s" if postgres else "?"
    lock = " FOR UPDATE" if postgres else ""  # SQLite: the writer holds the only write lock
    names = ", ".join(f'"{f.column_name}"' for f in _ORDER_FIELDS)
    return {
        "share_locked": f"SELECT {prebuilt.columns(Share)} FROM share WHERE token = {p}{lock}",
        # Either unique key taken (the number, or this share's order of this person) adds
        # nothing and returns no row: the caller tells which.
        "insert_order": f'INSERT INTO "order" ({names}) '
        f"VALUES ({', '.join([p] * len(_ORDER_FIELDS))}) ON CONFLICT DO NOTHING RETURNING id",
    }


def share_locked(token: str) -> Share | None:
    """The share with this token, locked until the transaction ends (its gift not loaded)."""
    return prebuilt.instance(Share, prebuilt.run("share_locked", (token,)).fetchone())


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
