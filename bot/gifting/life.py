"""A share's life as one table: its states, the moves between them, each move with its guard
and its effects. Every feature asks this table what may happen and makes it happen through
it; nothing else writes a share's state columns (`STATE_COLUMNS`; a test checks).

Usage (each move inside the caller's transaction, the share's row locked)::

    state = state_of(share, now)                  # State.OPEN, State.DRAWING, …
    why = refusal(Move.CLAIM, share, now)         # None, or the Code a recipient is told
    share = create(config, giver, gift_id, 2, "生日快乐", now, price=3360)   # stock reserved
    pay(share, now, expire_hours=72)              # AWAITING_PAYMENT → OPEN | DRAWING
    take_unit(share, now)                         # one unit of an OPEN or DRAWN share claimed
    draw(share, winners=2, now=now)               # DRAWING → DRAWN; unwon units released
    revoke(share, now); expire(share, now)        # the units left go back to stock
    return_unit(share, order, now)                # a cancelled order's unit back to stock

The state is read from the share's columns (and the clock), never stored twice: a share
past its expiry is EXPIRED before the sweep returns its stock. Money stands above this
module: a move that releases units of a share bought with money tells the books kept with
`keep_books` (bot/money/payments.py) in the same transaction, which refund what was paid and
close what was not. The table is drawn in docs/share_life.md (`document()`).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.codes import Code
from bot.forms.base import Invalid
from storage.models import Gift, Order, Share
from storage.runner import Retry

TOKEN_BYTES = 16  # 128 bits: the claim link cannot be guessed
STATE_COLUMNS = frozenset(
    {"payment", "released", "revoked_at", "drawn_at", "draw_at", "expires_at", "claimed",
     "quantity"}
)  # fmt: skip
UNPAID, PAID, LAPSED = "unpaid", "paid", "lapsed"  # the `payment` column of a share bought


class State(StrEnum):
    AWAITING_PAYMENT = "unpaid"  # bought, its stock held until the payment comes
    OPEN = "open"  # its units may be claimed
    DRAWING = "drawing"  # a draw before its draw: friends join
    DRAWN = "drawn"  # a draw drawn: its winners may claim
    CLAIMED = "claimed"  # every unit claimed
    EXPIRED = "expired"  # over with units unclaimed (returned to stock)
    REVOKED = "revoked"  # withdrawn by its giver
    LAPSED = "lapsed"  # its payment never came: void


class Move(StrEnum):
    CREATE = "create"
    PAY = "pay"
    LAPSE = "lapse"
    JOIN = "join"
    DRAW = "draw"
    CLAIM = "claim"
    REVOKE = "revoke"
    EXPIRE = "expire"
    RETURN_UNIT = "return_unit"


S = State
LIVE = frozenset({S.AWAITING_PAYMENT, S.OPEN, S.DRAWING, S.DRAWN})
OVER = frozenset({S.CLAIMED, S.EXPIRED, S.REVOKED, S.LAPSED})


@dataclass(frozen=True)
class Rule:
    sources: frozenset[State]
    targets: frozenset[State]
    guard: str  # in words, for the table in the docs
    effects: str
    refused: dict[State, Code]  # a state outside `sources` → what the person is told


# What a recipient is told when a share cannot be claimed or joined in its state.
_CLOSED = {S.AWAITING_PAYMENT: Code.SHARE_UNPAID, S.LAPSED: Code.SHARE_LAPSED,
           S.REVOKED: Code.SHARE_REVOKED, S.CLAIMED: Code.SHARE_USED_UP,
           S.EXPIRED: Code.SHARE_EXPIRED}  # fmt: skip

RULES: dict[Move, Rule] = {
    Move.CREATE: Rule(
        frozenset(),
        frozenset({S.AWAITING_PAYMENT, S.OPEN, S.DRAWING}),
        "the gift has the stock; the giver is within their limits (bot/gifting/shares.py)",
        "reserves the units (gift.committed); a share bought waits hold_minutes for its payment",
        {},
    ),
    Move.PAY: Rule(
        frozenset({S.AWAITING_PAYMENT}),
        frozenset({S.OPEN, S.DRAWING}),
        "WeChat Pay vouched for the payment (bot/money/)",
        "expiry counts from now (a draw: from its draw, moved if it came meanwhile); the card",
        {s: Code.PAY_LAPSED for s in OVER}
        | {s: Code.PAY_DONE for s in LIVE - {S.AWAITING_PAYMENT}},
    ),
    Move.LAPSE: Rule(
        frozenset({S.AWAITING_PAYMENT}),
        frozenset({S.LAPSED}),
        "the payment hold ended",
        "the units go back to stock; the books close its pay orders",
        {},
    ),
    Move.JOIN: Rule(
        frozenset({S.DRAWING}),
        frozenset({S.DRAWING}),
        "not its giver; before the draw time; once per person (bot/gifting/draws.py)",
        "a draw entry",
        _CLOSED | {S.DRAWN: Code.DRAW_CLOSED, S.OPEN: Code.SHARE_UNKNOWN},
    ),
    Move.DRAW: Rule(
        frozenset({S.DRAWING}),
        frozenset({S.DRAWN, S.EXPIRED}),
        "the draw time has come (or the sandbox's 立即开奖); once (a guarded UPDATE on drawn_at)",
        "min(winners, eligible entrants) win; the other units go back (refunded when paid)",
        {},
    ),
    Move.CLAIM: Rule(
        frozenset({S.OPEN, S.DRAWN}),
        frozenset({S.OPEN, S.DRAWN, S.CLAIMED}),
        "a unit left; not its giver; a draw's winner (bot/gifting/orders.py: one per person)",
        "one unit taken with a guarded UPDATE; the order and its notices",
        _CLOSED | {S.DRAWING: Code.DRAW_NOT_DRAWN},
    ),
    Move.REVOKE: Rule(
        LIVE,
        frozenset({S.REVOKED}),
        "its giver",
        "the units left go back (refunded when paid; its pay orders closed when not)",
        {
            S.REVOKED: Code.REVOKE_ALREADY,
            S.CLAIMED: Code.REVOKE_CLAIMED,
            S.EXPIRED: Code.REVOKE_EXPIRED,
            S.LAPSED: Code.REVOKE_LAPSED,
        },
    ),  # fmt: skip
    Move.EXPIRE: Rule(
        frozenset({S.OPEN, S.DRAWN, S.CLAIMED, S.EXPIRED}),
        frozenset({S.EXPIRED, S.CLAIMED}),
        "its expiry has passed and its stock is still held (the sweep)",
        "the units left go back (refunded when paid)",
        {},
    ),
    Move.RETURN_UNIT: Rule(
        frozenset(State),
        frozenset(State),
        "an order of the share was cancelled",
        "its unit goes back to stock (refunded when paid); the share keeps the claim on record",
        {},
    ),
}


def state_of(share: Share, now: dt.datetime) -> State:
    """Where the share is in its life now: the one reading of its columns."""
    if share.revoked_at is not None:
        return S.REVOKED
    if share.payment == LAPSED:
        return S.LAPSED
    if share.payment == UNPAID:
        return S.AWAITING_PAYMENT
    if share.kind == "draw" and share.drawn_at is None:
        return S.EXPIRED if share.released else S.DRAWING
    if share.claimed >= share.quantity:
        return S.CLAIMED if share.quantity > 0 else S.EXPIRED  # a draw nobody could win
    if share.released or share.expires_at <= now:
        return S.EXPIRED
    return S.DRAWN if share.kind == "draw" else S.OPEN


def allows(move: Move, share: Share, now: dt.datetime) -> bool:
    return state_of(share, now) in RULES[move].sources


def refusal(move: Move, share: Share, now: dt.datetime) -> Code | None:
    """None when the share's state allows `move`, else what the person is told."""
    state = state_of(share, now)
    rule = RULES[move]
    return None if state in rule.sources else rule.refused.get(state, Code.SHARE_UNKNOWN)


def check(move: Move, share: Share, now: dt.datetime, **params) -> State:
    """The share's state, when it allows `move`; raises Invalid with the refusal otherwise."""
    if why := refusal(move, share, now):
        raise Invalid(why, share=share, **params)
    return state_of(share, now)


# -- the books kept above this module -----------------------------------------------------


class Books(Protocol):
    """What money does when a share bought with it moves (bot/money/payments.py)."""

    def paid_units_released(self, share: Share, units: int, reason: str, now: dt.datetime): ...
    def lapsed(self, share: Share, now: dt.datetime) -> None: ...
    def unit_returned(self, share: Share, order: Order, now: dt.datetime) -> None: ...


_books: list[Books] = []


def keep_books(books: Books) -> None:
    """Money's side of every move (called once, when bot/money is imported)."""
    _books[:] = [books]


def _books_of(share: Share) -> Books:
    if not _books:  # refunds would be lost: the move's transaction is rolled back instead
        raise RuntimeError(f"share {share.id} was bought, and no books are kept (bot.money)")
    return _books[0]


# -- the moves -----------------------------------------------------------------------------


def create(
    giver: str, gift_id: str, quantity: int, blessing: str, now: dt.datetime, *,
    expire_hours: float, kind: str = "gift", draw_at: dt.datetime | None = None,
    variant: str = "", price: int | None = None, hold_until: dt.datetime | None = None,
) -> Share:  # fmt: skip
    """Reserve the units and make the share: open (a draw: drawing), or awaiting its payment
    until `hold_until` at `price` a unit. Raises Invalid(OUT_OF_STOCK | GIFT_RETIRED)."""
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
    bought = hold_until is not None
    return Share.create(
        token=secrets.token_urlsafe(TOKEN_BYTES), giver=giver, gift=gift_id, quantity=quantity,
        blessing=blessing, created_at=now, kind=kind, draw_at=draw_at, variant=variant,
        expires_at=hold_until if bought else (draw_at or now) + dt.timedelta(hours=expire_hours),
        payment=UNPAID if bought else "", unit_price=price or 0,
    )  # fmt: skip


def pay(share: Share, now: dt.datetime, expire_hours: float, draw_lead: dt.timedelta) -> bool:
    """The payment came: False when the share no longer awaits one (the books refund it).
    A draw whose time came meanwhile, or is nearer than `draw_lead`, is drawn as long after
    the payment as the giver asked after its creation: nobody could join while it waited."""
    if not allows(Move.PAY, share, now):
        return False
    draw_at = share.draw_at
    if draw_at is not None and draw_at < now + draw_lead:
        draw_at = now + (share.draw_at - share.created_at)
    expires = (draw_at or now) + dt.timedelta(hours=expire_hours)
    _write(share, payment=PAID, expires_at=expires, draw_at=draw_at)
    return True


def lapse(share: Share, now: dt.datetime) -> None:
    """The hold ended unpaid: the stock goes back, the books close its pay orders."""
    check(Move.LAPSE, share, now)
    _release(share, share.left)
    _write(share, payment=LAPSED, released=True)
    _books_of(share).lapsed(share, now)


def revoke(share: Share, now: dt.datetime) -> int:
    """Its giver withdraws it; returns the units that went back to stock."""
    state = check(Move.REVOKE, share, now)
    left = share.left
    unpaid = state == S.AWAITING_PAYMENT
    columns = {"revoked_at": now, "released": True} | ({"payment": LAPSED} if unpaid else {})
    taken = (
        Share.update(**columns)
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
    for name, value in columns.items():
        setattr(share, name, value)
    _release(share, left)
    if unpaid:
        _books_of(share).lapsed(share, now)
    else:
        _paid_back(share, left, "revoked", now)
    return left


def expire(share: Share, now: dt.datetime) -> int:
    """Past its expiry: the units left go back (an unpaid share lapses instead)."""
    state = state_of(share, now)
    if state == S.AWAITING_PAYMENT:
        lapse(share, now)
        return share.left
    if state == S.DRAWING:  # a draw is drawn before its winners' time can run out
        return 0
    check(Move.EXPIRE, share, now)
    if share.released or share.expires_at > now:
        return 0
    left = share.left
    _release(share, left)
    _write(share, released=True)
    _paid_back(share, left, "expired", now)
    return left


def take_unit(share: Share, now: dt.datetime) -> None:
    """One unit claimed: a guarded UPDATE, so racing claims never take more than there is."""
    check(Move.CLAIM, share, now)
    took = (
        Share.update(claimed=Share.claimed + 1)
        .where((Share.id == share.id) & (Share.claimed < Share.quantity) & ~Share.released)
        .execute()
    )
    if took != 1:
        raise Invalid(Code.SHARE_USED_UP, share=share)
    share.claimed += 1


def start_draw(share: Share, now: dt.datetime, early: bool = False) -> bool:
    """Claim the right to draw this draw, once, however many workers try (a guarded UPDATE);
    False when it is not due or another drew it. `early` (the sandbox's 立即开奖): before its
    draw time, which becomes now."""
    if state_of(share, now) != S.DRAWING or (share.draw_at > now and not early):
        return False
    columns = {"drawn_at": now} | ({"draw_at": now} if share.draw_at > now else {})
    taken = (
        Share.update(**columns)
        .where((Share.id == share.id) & Share.drawn_at.is_null() & ~Share.released)
        .execute()
    )
    if taken == 1:
        for name, value in columns.items():
            setattr(share, name, value)
    return taken == 1


def settle_draw(share: Share, winners: int, now: dt.datetime) -> int:
    """After start_draw: the units nobody won go back (refunded when paid); returns them."""
    unwon = share.quantity - winners
    if unwon:
        _release(share, unwon)
        _write(share, quantity=winners)
        _paid_back(share, unwon, "unwon", now)
    return unwon


def return_unit(share: Share, order: Order, now: dt.datetime) -> None:
    """A cancelled order's unit goes back to stock; the share keeps the claim on record."""
    Gift.update(committed=Gift.committed - 1).where(Gift.id == order.gift_id).execute()
    if share.payment == PAID:
        _books_of(share).unit_returned(share, order, now)


def _release(share: Share, units: int) -> None:
    if units:
        Gift.update(committed=Gift.committed - units).where(Gift.id == share.gift_id).execute()


def _paid_back(share: Share, units: int, reason: str, now: dt.datetime) -> None:
    if units > 0 and share.payment == PAID:
        _books_of(share).paid_units_released(share, units, reason, now)


def _write(share: Share, **columns) -> None:
    Share.update(**columns).where(Share.id == share.id).execute()
    for name, value in columns.items():
        setattr(share, name, value)
