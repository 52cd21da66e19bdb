"""Draws (抽奖): a share whose units go to friends drawn at random among those who joined.

Usage::

    created = join(share.token, "o_friend", "web", now)   # once per person; Invalid if not now
    view = seen_by(share, "o_friend", now)                 # entrants, joined, won, drawn
    claim_refusal(share, "o_friend", now)                  # None for a winner, else the Code
    draw_due(notices, now)                                 # the sweep: draw each due draw once
    draw_now(notices, token, now)                          # the sandbox's 立即开奖: the same, now
    pick_winners(entrants, 3)                              # uniform, from `secrets`

Anyone but the giver joins once, on the page or with 领取 <token> in chat, until the draw
time. At the draw time the background sweep draws exactly once, however many workers look
and whatever restarts: a guarded UPDATE (`drawn_at IS NULL`) claims the draw in the
transaction that picks the winners and queues their messages under unique outbox keys.
Who can win (the rule templates/pages/_draw.html shows): everyone who joined on the page, and those who joined
in chat and still follow the account. min(winners, eligible entrants) are picked uniformly
with the operating system's cryptographic randomness; the units nobody won return to stock
at once, and a winner's unit returns at the expiry if they have not claimed it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import peewee

from bot import visitors
from bot.codes import Code
from bot.forms.base import Invalid
from bot.gifting import catalogue, life
from storage import hot
from storage.db import db, locked, write_transaction
from storage.models import DrawEntry, Share, User

KIND = "draw"
_random = secrets.SystemRandom()


@dataclass(frozen=True)
class DrawView:
    """A draw as one visitor sees it; counts only, never who the others are."""

    entrants: int
    joined: bool
    won: bool
    drawn: bool
    draw_at: dt.datetime
    winners: int  # units to win (before the draw), units won (after)
    claimed: int  # winners who have ordered (the giver's view)
    can_join: bool

    def key(self) -> tuple:
        return (self.entrants, self.joined, self.won, self.drawn, self.winners, self.claimed,
                self.can_join)  # fmt: skip


def is_draw(share) -> bool:
    return getattr(share, "kind", "gift") == KIND


def join(token: str, openid: str, via: str, now: dt.datetime) -> bool:
    """Join the draw once; True when this joined, False when they had already. Raises
    Invalid: the giver's own, drawn or past its draw time, withdrawn, unknown."""
    with write_transaction():
        share = locked(Share.select().where(Share.token == token)).first()
        if share is None or not is_draw(share):
            raise Invalid(Code.SHARE_UNKNOWN)
        if why := join_refusal(share, openid, now):
            raise Invalid(why, share=share)
        hot.touch_user(openid, now)
        try:
            with db.atomic():  # a savepoint: a double click must not spoil it
                DrawEntry.create(share=share.id, openid=openid, via=via, joined_at=now)
        except peewee.IntegrityError:
            return False
        return True


def join_refusal(share: Share, openid: str, now: dt.datetime) -> Code | None:
    """Why this person cannot join: the giver's own (by OpenID, or a mobile they used), the
    share's state (not paid for yet, withdrawn, drawn; bot/gifting/life/), or past its draw
    time before the sweep drew it."""
    if why := visitors.own_share_refusal(share, openid):
        return why
    if why := life.refusal(life.Move.JOIN, share, now):
        return why
    if share.draw_at <= now:
        return Code.DRAW_CLOSED
    return None


def seen_by(share: Share, openid: str | None, now: dt.datetime) -> DrawView:
    entry = (
        DrawEntry.get_or_none((DrawEntry.share == share.id) & (DrawEntry.openid == openid))
        if openid
        else None
    )
    entrants = DrawEntry.select().where(DrawEntry.share == share.id).count()
    drawn = share.drawn_at is not None
    claimed = share.claimed if drawn else 0
    can_join = bool(openid) and entry is None and join_refusal(share, openid, now) is None
    return DrawView(
        entrants, entry is not None, bool(entry and entry.won), drawn, share.draw_at,
        share.quantity, claimed, can_join,
    )  # fmt: skip


def claim_refusal(share: Share, openid: str | None, now: dt.datetime) -> Code | None:
    """Only a winner orders from a draw, once it is drawn (the share's state is asked first:
    bot/gifting/orders.py)."""
    if share.drawn_at is None:
        return Code.DRAW_NOT_DRAWN
    entry = DrawEntry.get_or_none((DrawEntry.share == share.id) & (DrawEntry.openid == openid))
    if entry is None:
        return Code.DRAW_CLOSED
    return None if entry.won else Code.DRAW_NOT_WON


def pick_winners(entrants: list, count: int) -> list:
    """`count` of `entrants` (all when fewer), each set of them equally likely."""
    return _random.sample(entrants, min(count, len(entrants)))


def draw_due(notices, now: dt.datetime) -> int:
    """Draw every draw whose time has come; returns how many this call drew. A draw whose
    payment has not come is not due (bot/gifting/life/: it is not drawing yet)."""
    due = (
        (Share.kind == KIND)
        & Share.drawn_at.is_null()
        & Share.revoked_at.is_null()
        & ~Share.released
        & Share.payment.in_(("", life.PAID))
        & (Share.draw_at <= now)
    )
    drawn = 0
    for (share_id,) in Share.select(Share.id).where(due).tuples():
        drawn += _draw(notices, share_id, now)
    return drawn


def draw_now(notices, token: str, now: dt.datetime) -> bool:
    """立即开奖 (the /dev sandbox only): this draw drawn now, before its time, by the sweep's
    own code; False when it is no draw waiting for its draw."""
    share = Share.get_or_none(Share.token == token)
    return share is not None and is_draw(share) and _draw(notices, share.id, now, early=True) == 1


def _draw(notices, share_id: int, now: dt.datetime, early: bool = False) -> int:
    with write_transaction():
        share = locked(Share.select().where(Share.id == share_id)).get()
        if not life.start_draw(share, now, early):
            return 0  # another worker drew it, or its giver withdrew it
        may_win = (DrawEntry.via == "web") | User.unsubscribed_at.is_null() | User.subscribed
        entries = list(
            DrawEntry.select(DrawEntry.id, DrawEntry.openid, may_win)
            .join(User, peewee.JOIN.LEFT_OUTER, on=(User.openid == DrawEntry.openid))
            .where(DrawEntry.share == share_id)
            .order_by(DrawEntry.id)
            .tuples()
        )
        eligible = [
            (entry_id, openid)
            for entry_id, openid, can in entries
            if can and not visitors.own_share_refusal(share, openid)  # a mobile known since
        ]
        winners = pick_winners(eligible, share.quantity)
        won = {openid for _, openid in winners}
        if winners:
            DrawEntry.update(won=True).where(DrawEntry.id.in_([i for i, _ in winners])).execute()
        unwon = life.settle_draw(share, len(winners), now)
        share.gift = catalogue.get(share.gift_id)
        _tell(notices, share, [openid for _, openid, _ in entries], won, unwon)
        return 1


def _tell(notices, share: Share, entrants: list[str], won: set[str], unwon: int) -> None:
    """Winners, the others (kindly) and the giver, each once (unique outbox keys), each by the
    channel they have (a verified mobile: an SMS); money spoken of only when it was paid."""
    for person in entrants:
        notices.draw_outcome(share, person, won=person in won)
    refund = share.unit_price * unwon if share.payment == life.PAID else 0
    notices.draw_drawn(
        share, entrants=len(entrants), winners=len(won), returned=unwon, refund=refund
    )


def for_giver(share_list: list[Share]) -> dict[int, DrawView]:
    """Each draw's counts for its giver's list: entrants, winners, how many ordered."""
    ids = [s.id for s in share_list if is_draw(s)]
    if not ids:
        return {}
    counts = dict(
        DrawEntry.select(DrawEntry.share, peewee.fn.COUNT(DrawEntry.id))
        .where(DrawEntry.share.in_(ids))
        .group_by(DrawEntry.share)
        .tuples()
    )
    return {
        s.id: DrawView(
            counts.get(s.id, 0),
            False,
            False,
            s.drawn_at is not None,
            s.draw_at,
            s.quantity,
            s.claimed,
            False,
        )  # fmt: skip
        for s in share_list
        if s.id in ids
    }


async def join_on_page(services, token: str, openid: str) -> Code | None:
    """参与抽奖 on the page (the visitor opened it: web entrants always count); None when
    they are in (now or before), else why not."""
    try:
        await services.db.write(join, token, openid, "web", services.now())
    except Invalid as refused:
        return refused.code
    return None
