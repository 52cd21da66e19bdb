"""Who visits a claim page: a WeChat OpenID, or `tel:<E.164>` for a mobile verified outside
WeChat (bot/mobile_claims.py); and the one rule that a share's giver never claims or joins it.

Usage::

    visitor = identity("+8613800138000")   # "tel:+8613800138000"
    is_mobile(visitor); mobile_of(visitor)  # True; "+8613800138000"
    own_share_refusal(share, visitor)       # Code.OWN_SHARE, Code.MOBILE_OWN_SHARE or None

A giver is known by their OpenID, so a verified mobile is the giver's when the giver has used
it: as the phone of one of their own orders (a gift someone gave them), or by verifying it in
a browser that WeChat's login had told us was theirs (`MobileCode.verified_by`). A mobile the
giver never used where we could see it cannot be told from a friend's.
"""

from __future__ import annotations

from bot.codes import Code
from storage.models import MobileCode, Order, Share

PREFIX = "tel:"  # WeChat's OpenIDs never start so: a visitor known by a verified mobile


def identity(phone: str) -> str:
    return PREFIX + phone


def is_mobile(openid: str | None) -> bool:
    return bool(openid) and openid.startswith(PREFIX)


def mobile_of(openid: str | None) -> str | None:
    return openid[len(PREFIX) :] if is_mobile(openid) else None


def own_share_refusal(share: Share, openid: str | None) -> Code | None:
    """The giver's own share: by their OpenID, or by a mobile they have used."""
    if openid and openid == share.giver_id:
        return Code.OWN_SHARE
    phone = mobile_of(openid)
    if phone and givers_mobile(share.giver_id, phone):
        return Code.MOBILE_OWN_SHARE
    return None


def givers_mobile(giver: str, phone: str) -> bool:
    """Whether `giver` ordered with this mobile, or verified it while known by WeChat."""
    ordered = Order.select().where((Order.recipient == giver) & (Order.phone == phone))
    verified = MobileCode.select().where(
        (MobileCode.phone == phone) & (MobileCode.verified_by == giver)
    )
    return ordered.exists() or verified.exists()
