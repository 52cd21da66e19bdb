"""Who visits a claim page: a WeChat OpenID, or `tel:<E.164>` for a mobile verified outside
WeChat (bot/mobile_claims.py).

Usage::

    visitor = identity("+8613800138000")   # "tel:+8613800138000"
    is_mobile(visitor); mobile_of(visitor)  # True; "+8613800138000"
"""

from __future__ import annotations

PREFIX = "tel:"  # WeChat's OpenIDs never start so: a visitor known by a verified mobile


def identity(phone: str) -> str:
    return PREFIX + phone


def is_mobile(openid: str | None) -> bool:
    return bool(openid) and openid.startswith(PREFIX)


def mobile_of(openid: str | None) -> str | None:
    return openid[len(PREFIX) :] if is_mobile(openid) else None
