"""The giver's own share, as their status page shows it (their claim link, opened by them):
what is left, each claim without contact data, when it expires, the link again.

Usage::

    view = giver_status(share, now)        # StatusView: facts, claims, (a draw's counts)
    view.claims[0].swapped_to             # "流心奶黄月饼": the friend took that instead

Never who or where: the recipients' names, mobiles and addresses are for them and the
courier only, so no column carrying them is read here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bot.gifting import facts, media
from bot.gifting.facts import Facts
from bot.outgoing.channels import Offer
from storage.models import Gift, Order, Share


@dataclass(frozen=True)
class Claimed:
    """One claim as its giver sees it: when, how far along, their note. Never who or where:
    the recipient's name, mobile and address are for them and the courier only."""

    at: dt.datetime
    status: str  # placed | shipped | delivered | cancelled
    variant: str
    thanks: str
    swapped_to: str = ""  # the gift the friend took instead of the one given ([shares] swap)


@dataclass
class StatusView:
    """The giver's own share: what is left, who claimed it (and when), when it expires, the
    link and words to hand it on again."""

    share: Share
    facts: Facts  # its state and what pages say of it (bot/gifting/facts.py)
    claims: list[Claimed]
    qr_ready: bool = False
    greeting: media.Greeting = media.NONE  # their picture and voice: shown, pending, refused
    draw: Any = (
        None  # a draw's counts (bot/gifting/draws.py): entrants, winners, winners who claimed
    )
    promise: Offer | None = None  # the giver's news to come (bot/gifting/promises.py)

    @property
    def gift(self):
        return self.share.gift


def giver_status(share: Share, now: dt.datetime) -> StatusView:
    """The giver's view of their share: the claims' columns that carry no contact data."""
    rows = (
        Order.select(
            Order.created_at,
            Order.status,
            Order.variant,
            Order.thanks,
            Order.swapped_from,
            Gift.name,
        )  # fmt: skip
        .join(Gift)
        .where(Order.share == share.id)
        .order_by(Order.created_at, Order.id)
    )
    claims = [
        Claimed(o.created_at, o.status, o.variant, o.thanks, o.gift.name if o.swapped_from else "")
        for o in rows
    ]
    return StatusView(share, facts.of(share, now), claims, greeting=media.of(share))
