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
import secrets
from dataclasses import dataclass

from peewee import fn

from bot import catalogue, logs, payments
from bot.codes import Code
from bot.config import Config
from bot.forms.base import Invalid
from storage import hot
from storage.db import locked, write_transaction
from storage.models import Gift, Share, User, utc_text, utcnow
from storage.runner import Retry

log = logging.getLogger("gift_bot.shares")

TOKEN_BYTES = 16  # 128 bits
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


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
        return allowance(*self._args)

    @property
    def units(self) -> int:
        return self.counted.units

    def refusal(self, quantity: int = 1) -> Invalid | None:
        return self.counted.refusal(quantity)


def allowance(config: Config, giver: str, now: dt.datetime) -> Allowance:
    """Units and shares `giver` may still reserve now."""
    limit = config.shares
    held = hot.giver_open_units(giver, now)
    recent = hot.giver_recent_shares(giver, now - dt.timedelta(hours=1), limit.max_shares_per_hour)
    blocked = len(recent) >= limit.max_shares_per_hour
    next_at = recent[-1] + dt.timedelta(hours=1) if blocked else None
    return Allowance(max(limit.max_open_units_per_giver - held, 0), held, len(recent), next_at)


def _open_of(giver: str, now: dt.datetime):
    return (Share.giver == giver) & ~Share.released & (Share.expires_at > now)


def create(
    config: Config, giver: str, gift_id: str, quantity: int, blessing: str, now: dt.datetime,
    kind: str = "gift", draw_at: dt.datetime | None = None, variant: str = "",
) -> Share:  # fmt: skip
    """Reserve `quantity` units and create the share; raises Invalid(Code.OUT_OF_STOCK, ...)
    or the giver's limit (Invalid(Code.GIVER_LIMIT | "share_rate", ...)). `kind`: gift,
    surprise or draw (drawn at `draw_at`; its winners have `expire_hours` after it to claim)."""
    with write_transaction():
        locked(User.select().where(User.openid == giver)).first()  # one giver's shares in turn
        refusal = allowance(config, giver, now).refusal(quantity)
        if refusal:
            raise refusal
        reserved = (
            Gift.update(committed=Gift.committed + quantity, updated_at=now)
            .where((Gift.id == gift_id) & Gift.active & (Gift.stock - Gift.committed >= quantity))
            .execute()
        )
        if reserved != 1:
            gift = Gift.get_or_none(Gift.id == gift_id)
            if gift is None or not gift.active:
                raise Invalid(Code.GIFT_RETIRED)
            raise Invalid(Code.OUT_OF_STOCK, gift=gift.name, left=gift.available)
        share = Share.create(
            token=secrets.token_urlsafe(TOKEN_BYTES),
            giver=giver,
            gift=gift_id,
            quantity=quantity,
            blessing=blessing,
            created_at=now,
            expires_at=(draw_at or now) + dt.timedelta(hours=config.shares.expire_hours),
            kind=kind,
            draw_at=draw_at,
            variant=variant,
        )
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


def by_token(token: str) -> Share | None:
    """The share behind a claim token, its gift with it; None for unknown or malformed tokens
    alike."""
    if not TOKEN_RE.match(token or ""):
        return None
    share = hot.share_by_token(token)
    if share is not None:
        share.gift = catalogue.get(share.gift_id)
    return share


def payment_refusal(share: Share) -> Code | None:
    """Why a share bought in wechatpay mode cannot be used: not paid yet, or its hold ended
    unpaid (lapsed: over for good). None for a paid share and for any free one."""
    if share.payment == payments.UNPAID:
        return Code.SHARE_UNPAID
    if share.payment == payments.LAPSED:
        return Code.SHARE_REVOKED if share.revoked_at is not None else Code.SHARE_LAPSED
    return None


def refusal(share: Share, now: dt.datetime) -> Code | None:
    """Why nobody can claim from this share now (not paid for, withdrawn, used up, expired);
    None while open."""
    if why := payment_refusal(share):
        return why
    if share.revoked_at is not None:
        return Code.SHARE_REVOKED
    if share.left <= 0:
        return Code.SHARE_USED_UP
    if share.expires_at <= now or share.released:
        return Code.SHARE_EXPIRED
    return None


def keep_qr(share: Share) -> None:
    """Cache the claim QR's URL and expiry, so WeChat is asked once per share per month."""
    Share.update(qr_url=share.qr_url, qr_expires_at=share.qr_expires_at).where(
        Share.id == share.id
    ).execute()


def of_giver(openid: str, limit: int = 10) -> list[Share]:
    return list(
        Share.select(Share, Gift)
        .join(Gift)
        .where(Share.giver == openid)
        .order_by(Share.created_at.desc())
        .limit(limit)
    )


STATUSES = ("open", "claimed", "expired", "revoked", "unpaid")


def status(share: Share, now: dt.datetime) -> str:
    """open, claimed (every unit), expired (its time ran out with units left), revoked, or
    unpaid (bought in wechatpay mode, its payment awaited)."""
    if share.payment == payments.UNPAID and not share.released:
        return "unpaid"
    if share.revoked_at is not None:
        return "revoked"
    if share.left <= 0:
        return "claimed"
    return "expired" if share.released or share.expires_at <= now else "open"


def in_status(wanted: str, now: dt.datetime):
    """The shares `status()` calls `wanted`, as a WHERE clause."""
    live = Share.revoked_at.is_null()
    left = Share.claimed < Share.quantity
    unpaid = (Share.payment == payments.UNPAID) & ~Share.released
    waiting = live & left & ~unpaid
    return {
        "revoked": ~live,
        "claimed": live & ~left,
        "expired": waiting & (Share.released | (Share.expires_at <= now)),
        "open": waiting & ~Share.released & (Share.expires_at > now),
        "unpaid": unpaid,
    }[wanted]


# Why a share cannot be withdrawn, in its giver's words (its refusal() is the recipient's).
_NOT_REVOKED = {
    Code.SHARE_REVOKED: Code.REVOKE_ALREADY,
    Code.SHARE_USED_UP: Code.REVOKE_CLAIMED,
    Code.SHARE_EXPIRED: Code.REVOKE_EXPIRED,
    Code.SHARE_LAPSED: Code.REVOKE_LAPSED,
}


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
        # an unpaid share may be withdrawn too: it lapses, its order closed (bot/payments.py)
        if (why := refusal(share, now)) not in (None, Code.SHARE_UNPAID):
            raise Invalid(_NOT_REVOKED[why], share=share)
        left = share.left
        taken = (
            Share.update(revoked_at=now, released=True)
            .where(
                (Share.id == share.id)
                & Share.revoked_at.is_null()
                & ~Share.released
                & (Share.claimed == share.claimed)
            )
            .execute()
        )
        if taken != 1:  # a claim slipped in (a database without row locks): look again
            raise Retry(f"share {share.id} changed while it was withdrawn")
        Gift.update(committed=Gift.committed - left).where(Gift.id == share.gift_id).execute()
        payments.on_release(share, left, now, "revoked")
        share.revoked_at, share.released = now, True
        share.returned = left
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
    """Give the unclaimed units of expired shares back to stock; returns how many shares."""
    now = now or utcnow()
    released = 0
    due = Share.select(Share.id).where((Share.expires_at <= now) & ~Share.released)
    for (share_id,) in due.tuples():
        with write_transaction():
            share = locked(Share.select().where(Share.id == share_id)).get()
            if share.released:
                continue
            Gift.update(committed=Gift.committed - share.left).where(
                Gift.id == share.gift_id
            ).execute()
            Share.update(released=True).where(Share.id == share_id).execute()
            payments.on_release(share, share.left, now, "expired")
            released += 1
    return released
