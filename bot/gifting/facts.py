"""What every page and chat reply says about a share, read from its state in its life
(bot/gifting/life/), so the plain page, the draw page, the surprise page, the page outside
WeChat, the giver's status page and 我送出的 cannot disagree.

Usage::

    facts = of(share, now)
    facts.state            # life.State
    facts.deadline         # the one time that matters now: claim by, draw at, pay by; or None
    facts.paid             # money was paid for it: only then do words speak of refunds
    facts.bought           # it was to be paid for (wechatpay mode), paid or not
    facts.returned         # units that went back to stock (expired, withdrawn, lapsed)
    facts.refund           # fen going back to the giver for them (0 unless paid)

Templates read these names; the words themselves are in templates/pages/_share.html and
templates/chat/my_gifts.txt.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.gifting import life
from bot.gifting.life import State
from storage.models import Share


@dataclass(frozen=True)
class Facts:
    state: State
    kind: str  # gift | surprise | draw
    quantity: int  # a draw's winners once drawn
    claimed: int
    left: int
    deadline: dt.datetime | None
    draw_at: dt.datetime | None
    paid: bool
    bought: bool  # in wechatpay mode, paid or not
    returned: int
    refund: int  # fen

    @property
    def is_draw(self) -> bool:
        return self.kind == "draw"

    @property
    def claimable(self) -> bool:
        return self.state in (State.OPEN, State.DRAWN)

    @property
    def over(self) -> bool:
        return self.state in life.OVER


def of(share: Share, now: dt.datetime) -> Facts:
    state = life.state_of(share, now)
    paid = share.payment == life.PAID
    deadline = {
        State.AWAITING_PAYMENT: share.expires_at,  # pay by
        State.DRAWING: share.draw_at,
        State.OPEN: share.expires_at,
        State.DRAWN: share.expires_at,
    }.get(state)
    returned = share.left if state in (State.EXPIRED, State.REVOKED, State.LAPSED) else 0
    return Facts(
        state, share.kind, share.quantity, share.claimed, share.left, deadline, share.draw_at,
        paid, share.payment != "", returned, share.unit_price * returned if paid else 0,
    )  # fmt: skip
