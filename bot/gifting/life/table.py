"""A share's life as one table: its states, and the moves between them, each with the edges it
may take, its guard and its effects in words, and what a person is told when the state does
not allow it. `state_of` is the one reading of a share's columns.

Usage::

    state = state_of(share, now)                  # State.OPEN, State.DRAWING, …
    why = refusal(Move.CLAIM, share, now)         # None, or the Code a recipient is told
    check(Move.REVOKE, share, now)                # the state, or raises Invalid(code)
    RULES[Move.CLAIM].sources                     # the states a claim may start from
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from bot.codes import Code
from bot.forms.base import Invalid
from storage.models import Share

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
    SWAP = "swap"


S = State
LIVE = frozenset({S.AWAITING_PAYMENT, S.OPEN, S.DRAWING, S.DRAWN})
OVER = frozenset({S.CLAIMED, S.EXPIRED, S.REVOKED, S.LAPSED})


@dataclass(frozen=True)
class Rule:
    edges: tuple[tuple[State | None, State], ...]  # (from, to); from None: the share's birth
    guard: str  # in words, for the table in the docs
    effects: str
    refused: dict[State, Code]  # a state the move cannot start from → what the person is told

    @property
    def sources(self) -> frozenset[State]:
        return frozenset(a for a, _ in self.edges if a is not None)

    @property
    def targets(self) -> frozenset[State]:
        return frozenset(b for _, b in self.edges)


# What a recipient is told when a share cannot be claimed or joined in its state.
_CLOSED = {S.AWAITING_PAYMENT: Code.SHARE_UNPAID, S.LAPSED: Code.SHARE_LAPSED,
           S.REVOKED: Code.SHARE_REVOKED, S.CLAIMED: Code.SHARE_USED_UP,
           S.EXPIRED: Code.SHARE_EXPIRED}  # fmt: skip


def _from(sources, to: State) -> tuple[tuple[State, State], ...]:
    return tuple((a, to) for a in sorted(sources))


RULES: dict[Move, Rule] = {
    Move.CREATE: Rule(
        ((None, S.AWAITING_PAYMENT), (None, S.OPEN), (None, S.DRAWING)),
        "the gift has the stock; the giver is within their limits (bot/gifting/shares.py)",
        "reserves the units (gift.committed); a share bought waits hold_minutes for its payment",
        {},
    ),
    Move.PAY: Rule(
        ((S.AWAITING_PAYMENT, S.OPEN), (S.AWAITING_PAYMENT, S.DRAWING)),
        "WeChat Pay vouched for the payment (bot/money/)",
        "expiry counts from now (a draw: from its draw, moved if it came meanwhile); the card",
        {s: Code.PAY_LAPSED for s in OVER}
        | {s: Code.PAY_DONE for s in LIVE - {S.AWAITING_PAYMENT}},
    ),
    Move.LAPSE: Rule(
        ((S.AWAITING_PAYMENT, S.LAPSED),),
        "the payment hold ended (the sweep)",
        "the units go back to stock; the books close its pay orders",
        {},
    ),
    Move.JOIN: Rule(
        ((S.DRAWING, S.DRAWING),),
        "not its giver; before the draw time; once per person (bot/gifting/draws.py)",
        "a draw entry",
        _CLOSED | {S.DRAWN: Code.DRAW_CLOSED, S.OPEN: Code.SHARE_UNKNOWN},
    ),
    Move.DRAW: Rule(
        ((S.DRAWING, S.DRAWN), (S.DRAWING, S.EXPIRED)),
        "the draw time has come (or the sandbox's 立即开奖); once (a guarded UPDATE on drawn_at)",
        "min(winners, eligible entrants) win; the other units go back (refunded when paid); "
        "nobody to win: over",
        {},
    ),
    Move.CLAIM: Rule(
        ((S.OPEN, S.OPEN), (S.OPEN, S.CLAIMED), (S.DRAWN, S.DRAWN), (S.DRAWN, S.CLAIMED)),
        "a unit left; not its giver; a draw's winner (bot/gifting/orders.py: one per person)",
        "one unit taken with a guarded UPDATE; the order and its notices",
        _CLOSED | {S.DRAWING: Code.DRAW_NOT_DRAWN},
    ),
    Move.REVOKE: Rule(
        _from(LIVE, S.REVOKED),
        "its giver",
        "the units left go back (refunded when paid; its pay orders closed when not)",
        {
            S.REVOKED: Code.REVOKE_ALREADY,
            S.CLAIMED: Code.REVOKE_CLAIMED,
            S.EXPIRED: Code.REVOKE_EXPIRED,
            S.LAPSED: Code.REVOKE_LAPSED,
        },
    ),
    Move.EXPIRE: Rule(
        ((S.OPEN, S.EXPIRED), (S.DRAWN, S.EXPIRED), (S.CLAIMED, S.CLAIMED), (S.EXPIRED, S.EXPIRED)),
        "its expiry has passed and its stock is still held (the sweep)",
        "the units left go back (refunded when paid)",
        {},
    ),  # fmt: skip
    Move.SWAP: Rule(
        ((S.OPEN, S.OPEN), (S.DRAWN, S.DRAWN), (S.CLAIMED, S.CLAIMED)),
        "in the claim's transaction, after its unit was taken; [shares] swap allows the gift, "
        "which costs no more than the unit was worth and has a unit in stock (a guarded UPDATE)",
        "the share's gift gets its unit back, the new gift gives one; a bought unit's "
        "difference is refunded; the share's state columns stay as the claim left them",
        _CLOSED | {S.DRAWING: Code.DRAW_NOT_DRAWN},
    ),
    Move.RETURN_UNIT: Rule(
        tuple((s, s) for s in State),
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
