"""One person as support staff need to see them: when they came, whether they follow, what
they gave and what they received (their own orders with their own delivery details).

Usage::

    person("o_abc", now)   # {"openid", "first_seen", …, "shares": [...], "orders": [...]}, or None
"""

from __future__ import annotations

import datetime as dt

from bot.forms.delivery import Slot
from bot.gifting import shares
from storage.models import Gift, Order, User, utc_text


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
        "first_seen": utc_text(user.first_seen),
        "last_seen": utc_text(user.last_seen),
        "last_message_at": utc_text(user.last_message_at),
        "subscribed": user.subscribed,
        "shares": shares.listing(now, giver=openid),
        "orders": [
            {
                "order_no": order.order_no,
                "gift": order.gift.name,
                "status": order.status,
                "created_at": utc_text(order.created_at),
                "carrier": order.carrier,
                "tracking": order.tracking,
                "delivery": Slot(order.delivery_date, order.delivery_slot).key,
                "address": order.address,
                "phone": order.phone,
            }
            for order in received
        ],
    }
