"""One person as support staff need to see them: when they came, whether they follow, what
they gave and what they received (their own orders with their own delivery details).

Usage::

    person("o_abc", now)   # {"openid", "first_seen", …, "shares": [...], "orders": [...]}, or None
"""

from __future__ import annotations

import datetime as dt

from bot import shares
from storage.models import Gift, Order, User


def person(openid: str, now: dt.datetime) -> dict | None:
    user = User.get_or_none(User.openid == openid)
    if user is None:
        return None
    received = (
        Order.select(Order, Gift)
        .join(Gift)
        .where(Order.recipient == openid)
        .order_by(Order.created_at.desc())
    )
    return {
        "openid": user.openid,
        "first_seen": _utc(user.first_seen),
        "last_seen": _utc(user.last_seen),
        "last_message_at": _utc(user.last_message_at),
        "subscribed": user.subscribed,
        "shares": shares.listing(now, giver=openid),
        "orders": [
            {
                "order_no": order.order_no,
                "gift": order.gift.name,
                "status": order.status,
                "created_at": _utc(order.created_at),
                "carrier": order.carrier,
                "tracking": order.tracking,
                "delivery": f"{order.delivery_date.isoformat()} {order.delivery_slot}",
                "address": order.address,
                "phone": order.phone,
            }
            for order in received
        ],
    }


def _utc(when: dt.datetime | None) -> str:
    return when.isoformat(timespec="seconds") + "+00:00" if when else ""
