"""Shares (S11): a giver sends N units of a gift; each unit can be claimed by a different person.

Usage::

    share = create(config, "o_giver", "tea-longjing", quantity=2, blessing="生日快乐")
    share.token                      # ≥128 bits, URL-safe: the claim link is /claim/<token>
    state_of(share, now)             # "open" | "used_up" | "expired"
    release_expired(now)             # return the unclaimed units of expired shares to stock

Stock is reserved in the transaction that creates the share, with a guarded
UPDATE that cannot take stock below zero, whatever runs beside it.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

from bot.config import Config
from bot.forms.base import Invalid
from storage.db import locked, write_transaction
from storage.models import Gift, Share, utcnow

TOKEN_BYTES = 16  # 128 bits
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def create(
    config: Config, giver: str, gift_id: str, quantity: int, blessing: str, now: dt.datetime
) -> Share:
    """Reserve `quantity` units and create the share; raises Invalid("out_of_stock", ...)."""
    with write_transaction():
        reserved = (
            Gift.update(committed=Gift.committed + quantity, updated_at=now)
            .where((Gift.id == gift_id) & Gift.active & (Gift.stock - Gift.committed >= quantity))
            .execute()
        )
        if reserved != 1:
            gift = Gift.get_or_none(Gift.id == gift_id)
            if gift is None or not gift.active:
                raise Invalid("gift_retired")
            raise Invalid("out_of_stock", gift=gift.name, left=gift.available)
        return Share.create(
            token=secrets.token_urlsafe(TOKEN_BYTES),
            giver=giver,
            gift=gift_id,
            quantity=quantity,
            blessing=blessing,
            created_at=now,
            expires_at=now + dt.timedelta(hours=config.shares.expire_hours),
        )


def by_token(token: str) -> Share | None:
    """The share behind a claim token; None for unknown or malformed tokens alike."""
    if not TOKEN_RE.match(token or ""):
        return None
    return Share.select(Share, Gift).join(Gift).where(Share.token == token).first()


def state_of(share: Share, now: dt.datetime) -> str:
    if share.left <= 0:
        return "used_up"
    if share.expires_at <= now or share.released:
        return "expired"
    return "open"


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
            released += 1
    return released
