"""What each page promises its visitor about news to come, and only what will happen for them
(the channels are bot/outgoing/channels.py's): a draw joined, a share being paid for or
waiting for friends, an order placed.

Usage (database reads: through `services.db.run`)::

    offer = on_claim_page(config, share, facts, draw, "o_friend", in_wechat=True, now=now)
    offer = on_giver_page(config, share, facts, "o_giver", in_wechat=True, now=now, page=Page.PAY)
    offer = on_order_page(config, share, "o_friend", in_wechat=True, now=now)
    offer = in_chat(config, share, "o_friend", now)     # 领取 <token> joined a draw in chat
    offer.kind          # channels.Promise: subscribe (offer.url asks WeChat), sms, come_back, …

None where the page promises nothing (a gift one may claim now, a share that is over).
"""

from __future__ import annotations

import datetime as dt

from bot.config import Config
from bot.gifting.facts import Facts
from bot.gifting.life import State
from bot.outgoing import channels
from bot.outgoing.channels import Offer
from bot.outgoing.subscriptions import Page
from storage.models import Share

# The giver hears of their share while friends may still claim it, or pay for it.
GIVER_WAITS = frozenset({State.AWAITING_PAYMENT, State.OPEN, State.DRAWING, State.DRAWN})


def on_claim_page(
    config: Config, share: Share, facts: Facts, draw, visitor: str | None, in_wechat: bool,
    now: dt.datetime,
) -> Offer | None:  # fmt: skip
    """A draw the visitor joined: its result, at the draw time."""
    if draw is None or not draw.joined or facts.state != State.DRAWING:
        return None
    return channels.promise(
        config, visitor, share, Page.CLAIM, "draw_won", in_wechat, now, by=share.draw_at
    )


def in_chat(config: Config, share: Share, person: str, now: dt.datetime) -> Offer:
    """A draw joined in chat (`领取 <token>`): its result, at the draw time; the chat is WeChat,
    so a subscription link can be offered there too."""
    return channels.promise(
        config, person, share, Page.CLAIM, "draw_won", True, now, by=share.draw_at
    )


def on_giver_page(
    config: Config, share: Share, facts: Facts, giver: str, in_wechat: bool, now: dt.datetime,
    page: Page = Page.CLAIM,
) -> Offer | None:  # fmt: skip
    """The giver's share while it waits (for payment, or for friends): friends claiming it, the
    reminder before it expires, money going back."""
    if facts.state not in GIVER_WAITS:
        return None
    return channels.promise(config, giver, share, page, "reminder", in_wechat, now)


def on_order_page(
    config: Config, share: Share, visitor: str, in_wechat: bool, now: dt.datetime
) -> Offer:
    """The recipient's order: its shipping, in WeChat (the order's own SMS says it anyway when
    an `order_shipped` template exists: `texts_shipping`)."""
    return channels.promise(config, visitor, share, Page.DONE, None, in_wechat, now)


def texts_shipping(config: Config) -> bool:
    return channels.has_template(config.sms, "order_shipped")
