"""A share's life, the one place its state changes: `table.py` declares its states and the
moves between them (guards, effects, what a person is told), `moves.py` makes them (the only
writer of a share's state columns), `drawing.py` draws the table for docs/share_life.md.

Usage::

    from bot.gifting import life
    life.state_of(share, now); life.refusal(life.Move.CLAIM, share, now)
    life.take_unit(share, now); life.revoke(share, now)
"""

from bot.gifting.life.moves import (
    TOKEN_BYTES,
    Books,
    create,
    expire,
    keep_books,
    lapse,
    pay,
    return_unit,
    revoke,
    settle_draw,
    start_draw,
    swap_unit,
    take_unit,
)
from bot.gifting.life.table import (
    LAPSED,
    LIVE,
    OVER,
    PAID,
    RULES,
    STATE_COLUMNS,
    UNPAID,
    Move,
    Rule,
    State,
    allows,
    check,
    refusal,
    state_of,
)

__all__ = [
    "LAPSED", "LIVE", "OVER", "PAID", "RULES", "STATE_COLUMNS", "TOKEN_BYTES", "UNPAID", "Books",
    "Move", "Rule", "State", "allows", "check", "create", "expire", "keep_books", "lapse", "pay",
    "refusal", "return_unit", "revoke", "settle_draw", "start_draw", "state_of", "swap_unit", "take_unit",
]  # fmt: skip
