"""Surprise shares (惊喜): the recipient sees a wrapped box until their order is placed.

Usage::

    gift = as_seen(share)                    # the gift as the recipient may see it now
    gift = as_seen(share, revealed=True)     # after the order, or for the giver: the gift itself
    gift.name, gift.image, gift.variants     # a wrapped box keeps the variants to choose from

A variant would name the gift (玫瑰, 向日葵): a surprise's giver picks it when sharing
(`wrapped_variant` in bot/forms/share.py), and the order takes it from the share.

Every view a recipient reads before ordering (the claim page, its title and Open Graph tags,
the order form, the chat claim, the share card, a reminder) takes its gift from here, so the
secret is kept in one place. The confirmation (page, chat, SMS) reads the order's own gift.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

KIND = "surprise"
PICTURE = "/static/surprise/box.png"  # drawn from static/surprise/src/box.svg


@dataclass(frozen=True)
class Wrapped:
    """A gift in its wrapping: nothing of it shows but that it is one, and its variants
    (the recipient still picks a size or a colour)."""

    id: str
    variants: list[str] = field(default_factory=list)
    name: str = "惊喜礼物"
    description: str = ""
    image: str = PICTURE
    active: bool = True
    wrapped: bool = True


def is_surprise(share: Any) -> bool:
    return getattr(share, "kind", "gift") == KIND


def as_seen(share: Any, revealed: bool = False) -> Any:
    """The share's gift, or its wrapping while it is a surprise not yet revealed."""
    gift = share.gift
    if revealed or not is_surprise(share) or gift is None:
        return gift
    chosen = getattr(share, "variant", "")  # the giver chose it: nothing left to ask
    return _wrapping(gift.id, () if chosen else tuple(gift.variants or ()))


@functools.cache
def _wrapping(gift_id: str, variants: tuple[str, ...]) -> Wrapped:
    """One wrapping per gift and variants, so pages drawn from it can be kept (their key holds
    the gift object's identity)."""
    return Wrapped(gift_id, list(variants))
