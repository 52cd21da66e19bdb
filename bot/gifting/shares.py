"""Shares (S11): a giver sends N units of a gift; each unit can be claimed by a different person.

Usage::

    share = create(config, "o_giver", "tea-longjing", quantity=2, blessing="生日快乐")
    share.token                      # ≥128 bits, URL-safe: the claim link is /claim/<token>
    refusal(share, now)              # None while open, else Code.SHARE_USED_UP / SHARE_EXPIRED
    release_expired(now)             # return the unclaimed units of expired shares to stock

Stock is reserved in the transaction that creates the share, with a guarded
UPDATE that cannot take stock below zero, whatever runs beside it. One giver
may hold at most `[shares] max_open_units_per_giver` units in open shares and
create at most `max_shares_per_hour` shares an hour, so no follower can empty
a gift for everyone else; the giver's row is locked while this is counted.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass

from peewee import fn

from bot import logs
from bot.codes import Code
from bot.config import Config
from bot.forms.base import Invalid
from bot.gifting import catalogue, life
from storage import hot, share_reads
from storage.db import locked, write_transaction
from storage.models import Gift, Share, User, utc_text, utcnow

log = logging.getLogger("gift_bot.shares")

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
HOUR = dt.timedelta(hours=1)  # the window of the hourly share limit


@dataclass(frozen=True)
class Allowance:
    """What one giver may still share now, under `[shares]`'s limits."""

    units: int  # more units they may reserve
    held: int  # units they hold in open shares
    shares_this_hour: int
    next_share_at: dt.datetime | None  # when the hourly limit lets them share again

    def refusal(self, quantity: int = 1) -> Invalid | None:
        if self.next_share_at is not None:
            return Invalid(Code.SHARE_RATE, at=self.next_share_at, count=self.shares_this_hour)
        if quantity > self.units:
            return Invalid(Code.GIVER_LIMIT, held=self.held, left=self.units, quantity=quantity)
        return None


class LazyAllowance:
    """An Allowance counted on first use: a share dialogue needs it for the quantity, not
    for every step."""

    def __init__(self, config: Config, giver: str, now: dt.datetime):
        self._args = (config, giver, now)

    @functools.cached_property
    def counted(self) -> Allowance:
        return allowance(*self._args, opened=True)  # the message's opening may have read it

    @property
    def units(self) -> int:
        return self.counted.units

    def refusal(self, quantity: int = 1) -> Invalid | None:
        return self.counted.refusal(quantity)


def allowance(config: Config, giver: str, now: dt.datetime, opened: bool = False) -> Allowance:
    """Units and shares `giver` may still reserve now (`opened`: as a giving dialogue's message
    opened, storage/hot.py; never where the share is made, after the giver's lock)."""
    limit = config.shares
    since, per_hour = allowance_window(config, now)
    held, recent = hot.giver_allowance(giver, now, since, per_hour, opened=opened)
    blocked = len(recent) >= per_hour
    next_at = recent[-1] + HOUR if blocked else None
    return Allowance(max(limit.max_open_units_per_giver - held, 0), held, len(recent), next_at)


def allowance_window(config: Config, now: dt.datetime) -> tuple[dt.datetime, int]:
    """Since when shares count against the hourly limit, and that limit."""
    return now - HOUR, config.shares.max_shares_per_hour


def _open_of(giver: str, now: dt.datetime):
    return (Share.giver == giver) & ~Share.released & (Share.expires_at > now)


def create(
    config: Config, giver: str, gift_id: str, quantity: int, blessing: str, now: dt.datetime,
    kind: str = "gift", draw_at: dt.datetime | None = None, variant: str = "",
    price: int | None = None, hold_until: dt.datetime | None = None, theme: str = "",
) -> Share:  # fmt: skip
    """Reserve `quantity` units and create the share (bot/gifting/life/); raises
    Invalid(Code.OUT_OF_STOCK, ...) or the giver's limit (Invalid(Code.GIVER_LIMIT |
    "share_rate", ...)). `kind`: gift, surprise or draw (drawn at `draw_at`; its winners have
    `expire_hours` after it to claim); with `hold_until`, bought at `price` a unit and
    awaiting its payment until then."""
    with write_transaction():
        locked(User.select().where(User.openid == giver)).first()  # one giver's shares in turn
        refusal = allowance(config, giver, now).refusal(quantity)
        if refusal:
            raise refusal
        share = life.create(
            giver, gift_id, quantity, blessing, now, expire_hours=config.shares.expire_hours,
            kind=kind, draw_at=draw_at, variant=variant, price=price, hold_until=hold_until,
            theme=theme,
        )  # fmt: skip
        _warn_if_hoarding(giver, gift_id, now)
        return share


def _warn_if_hoarding(giver: str, gift_id: str, now: dt.datetime) -> None:
    """Tell operators when one giver holds more than a tenth of a gift's stock."""
    held = (
        Share.select(fn.COALESCE(fn.SUM(Share.quantity - Share.claimed), 0))
        .where(_open_of(giver, now) & (Share.gift == gift_id))
        .scalar()
    )
    stock = Gift.select(Gift.stock).where(Gift.id == gift_id).scalar() or 0
    if held * 10 > stock:
        log.warning(
            "one giver holds more than a tenth of a gift",
            extra={"user": logs.hashed(giver), "gift": gift_id, "held": held, "stock": stock},
        )


def by_token(token: str, openid: str | None = None) -> Share | None:
    """The share behind a claim token, its gift with it; None for unknown or malformed tokens
    alike. With `openid`, their order from it is read with it (share_reads.share_by_token)."""
    if not TOKEN_RE.match(token or ""):
        return None
    share = share_reads.share_by_token(token, openid)
    if share is not None:
        share.gift = catalogue.get(share.gift_id)
    return share


def page(token: str, openid: str | None) -> share_reads.PageRows | None:
    """What the share's gift page shows, read at once: the share (its gift with it), the
    visitor's order, the greeting's rows; None for unknown or malformed tokens alike."""
    if not TOKEN_RE.match(token or ""):
        return None
    rows = share_reads.page_rows(token, openid)
    if rows is not None:
        rows.share.gift = catalogue.get(rows.share.gift_id, rows.catalogue_version)
    return rows


def refusal(share: Share, now: dt.datetime) -> Code | None:
    """Why nobody can claim from this share now (not paid for, withdrawn, used up, expired, a
    draw not drawn yet); None while its units may be claimed."""
    return life.refusal(life.Move.CLAIM, share, now)


def of_giver(openid: str, limit: int = 10) -> list[Share]:
    return list(
        Share.select(Share, Gift)
        .join(Gift)
        .where(Share.giver == openid)
        .order_by(Share.created_at.desc())
        .limit(limit)
    )


STATUSES = tuple(life.State)


def status(share: Share, now: dt.datetime) -> str:
    """Its state in the share's life (bot/gifting/life/), as operators filter by it."""
    return life.state_of(share, now).value


def in_status(wanted: str, now: dt.datetime):
    """The shares `status()` calls `wanted`, as a WHERE clause (the same reading as
    life.state_of; a test holds them together)."""
    revoked = Share.revoked_at.is_null(False)
    bought = Share.payment.in_((life.UNPAID, life.LAPSED))
    live = ~revoked & ~bought
    drawing = live & (Share.kind == "draw") & Share.drawn_at.is_null()
    settled = live & ~((Share.kind == "draw") & Share.drawn_at.is_null())
    used_up = Share.claimed >= Share.quantity
    ended = Share.released | (Share.expires_at <= now)
    return {
        "revoked": revoked,
        "lapsed": ~revoked & (Share.payment == life.LAPSED),
        "unpaid": ~revoked & (Share.payment == life.UNPAID),
        "drawing": drawing & ~Share.released,
        "claimed": settled & used_up & (Share.quantity > 0),
        "expired": (drawing & Share.released)
        | (settled & ((used_up & (Share.quantity == 0)) | (~used_up & ended))),
        "open": settled & ~used_up & ~ended & (Share.kind != "draw"),
        "drawn": settled & ~used_up & ~ended & (Share.kind == "draw"),
    }[wanted]


def revoke(giver: str, share_id: int, now: dt.datetime) -> Share:
    """Withdraw the giver's share: its unclaimed units return to stock in this transaction.
    Raises Invalid (not theirs, withdrawn already, nothing left, expired). A last claim racing
    this one: the share's row is locked, so exactly one wins, and stock is right either way."""
    with write_transaction():
        share = locked(Share.select().where((Share.id == share_id) & (Share.giver == giver)))
        share = share.first()
        if share is None:
            raise Invalid(Code.REVOKE_WHICH)
        share.gift = catalogue.get(share.gift_id)
        share.was_paid = share.payment == life.PAID  # what the giver is told of the money
        share.returned = life.revoke(share, now)
        return share


def listing(now: dt.datetime, wanted: str | None = None, giver: str | None = None) -> list[dict]:
    """Shares for operators, newest first: their status and counts, never a recipient's data."""
    query = Share.select(Share, Gift).join(Gift).order_by(Share.created_at.desc(), Share.id.desc())
    if giver:
        query = query.where(Share.giver == giver)
    if wanted:
        query = query.where(in_status(wanted, now))
    rows = []
    for share in query:
        state = status(share, now)
        rows.append(
            {
                "id": share.id,
                "token": share.token,
                "giver": share.giver_id,
                "gift": share.gift.name,
                "quantity": share.quantity,
                "claimed": share.claimed,
                "status": state,
                "created_at": utc_text(share.created_at),
                "expires_at": utc_text(share.expires_at),
            }
        )
    return rows


def release_expired(now: dt.datetime | None = None) -> int:
    """Give the unclaimed units of expired shares back to stock (an unpaid share whose hold
    ended lapses); returns how many shares."""
    now = now or utcnow()
    released = 0
    due = Share.select(Share.id).where((Share.expires_at <= now) & ~Share.released)
    for (share_id,) in due.tuples():
        with write_transaction():
            share = locked(Share.select().where(Share.id == share_id)).get()
            if share.released:
                continue
            life.expire(share, now)
            released += 1
    return released
