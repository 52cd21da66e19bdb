"""Taking another gift instead ([shares] swap): what a recipient may take instead of the gift
they were given, before their order is placed.

Usage::

    gifts = choices(config, share)          # the gifts on offer instead, in catalogue order
    gift = choice(config, share, "mooncake")  # one of them, or Invalid(SWAP_OFF | SWAP_UNKNOWN)
    swap_into(config, share, order, "mooncake", now)   # in the order's transaction

`[shares] swap` is "off" (no swap), "same_price" (a gift of the very price) or "up_to_price"
(that price or less). The price is what the unit was worth to its giver: what they paid for
it ([payments] mode "wechatpay"), else the given gift's catalogue price. A more expensive
gift is never offered; a cheaper one bought with money refunds the difference to the giver
(bot/gifting/life.py's SWAP move tells the books). A recipient reads a price band (the
templates' `band` filter, bot/render.py), never the giver's price; a surprise's list leaves out the wrapped gift, so nothing in it names it.
The stock moves in the order's transaction (life.swap_unit), with a guarded UPDATE, so the
list may offer a gift that is gone by the time the order is placed: then Invalid(SWAP_GONE).
"""

from __future__ import annotations

import datetime as dt

from bot.codes import Code
from bot.config import Config
from bot.forms.base import Invalid
from bot.gifting import catalogue, life
from storage.models import Gift, Order, Share

OFF, SAME_PRICE, UP_TO_PRICE = "off", "same_price", "up_to_price"


def worth(share: Share) -> int:
    """What one unit of the share is worth, in fen: what its giver paid, else the gift's price."""
    if share.payment == life.PAID:
        return share.unit_price
    gift = share.gift if share.gift is not None else catalogue.get(share.gift_id)
    return gift.price


def allowed(config: Config) -> bool:
    return config.shares.swap != OFF


def choices(config: Config, share: Share) -> list[Gift]:
    """The gifts the share's recipient may take instead, now (none when swapping is off)."""
    if not allowed(config):
        return []
    most = worth(share)
    same = config.shares.swap == SAME_PRICE
    return [
        gift
        for gift in catalogue.active()
        if gift.id != share.gift_id
        and gift.available >= 1
        and (gift.price == most if same else gift.price <= most)
    ]


def choice(config: Config, share: Share, gift_id: str) -> Gift:
    """The gift `gift_id` when the share's recipient may take it instead; Invalid otherwise."""
    if not allowed(config):
        raise Invalid(Code.SWAP_OFF)
    offered = choices(config, share)
    gift = next((g for g in offered if g.id == gift_id), None)
    if gift is None:
        raise Invalid(Code.SWAP_UNKNOWN, text=gift_id[:20], count=len(offered))
    return gift


def swap_into(config: Config, share: Share, order: Order, gift_id: str, now: dt.datetime) -> int:
    """The unit just claimed becomes `gift_id` (the order's transaction); returns the fen
    refunded to the giver. Raises Invalid(SWAP_OFF | SWAP_UNKNOWN | SWAP_GONE)."""
    if not allowed(config):
        raise Invalid(Code.SWAP_OFF)
    if gift_id == share.gift_id:
        raise Invalid(Code.SWAP_UNKNOWN, text=gift_id[:20], count=0)
    same = config.shares.swap == SAME_PRICE
    return life.swap_unit(share, order, gift_id, worth(share), now, same=same)
