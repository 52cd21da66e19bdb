"""The moves of a share's life (bot/gifting/life/table.py), as they are made: each checks
the table, writes the share's state columns — nothing outside this package writes them; a
test checks — and moves the gift's stock, in the caller's transaction with the share's row
locked. Money stands above: a move that releases units of a share bought with money tells
the books kept with `keep_books` (bot/money/payments.py::Books) in the same transaction.

Usage::

    share = create(giver, gift_id, 2, "生日快乐", now, expire_hours=72)   # stock reserved
    pay(share, now, expire_hours=72, draw_lead=lead)   # AWAITING_PAYMENT → OPEN | DRAWING
    take_unit(share, now)                              # one unit of an OPEN or DRAWN share
    swap_unit(share, order, "mooncake", 12800, now)    # that unit taken as another gift
    start_draw(share, now); settle_draw(share, 2, now) # DRAWING → DRAWN; unwon units back
    revoke(share, now); expire(share, now); lapse(share, now)
    return_unit(share, order, now)                     # a cancelled order's unit back
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Protocol

from bot.codes import Code
from bot.forms.base import Invalid
from bot.gifting.life.table import LAPSED, PAID, UNPAID, Move, S, allows, check, state_of
from storage import hot, prebuilt
from storage.models import Gift, Order, Share
from storage.runner import Retry

TOKEN_BYTES = 16  # 128 bits: the claim link cannot be guessed


class Books(Protocol):
    """What money does when a share bought with it moves (bot/money/payments.py)."""

    def paid_units_released(self, share: Share, units: int, reason: str, now: dt.datetime): ...
    def lapsed(self, share: Share, now: dt.datetime) -> None: ...
    def unit_returned(self, share: Share, order: Order, now: dt.datetime) -> int: ...
    def unit_swapped(self, share: Share, order: Order, fen: int, now: dt.datetime) -> None: ...


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
    theme: str = "",
) -> Share:  # fmt: skip
    """Reserve the units and make the share: open (a draw: drawing), or awaiting its payment
    until `hold_until` at `price` a unit. Raises Invalid(OUT_OF_STOCK | GIFT_RETIRED)."""
    reserved = _stock(
        Gift.update(committed=Gift.committed + quantity, updated_at=now).where(
            (Gift.id == gift_id) & Gift.active & (Gift.stock - Gift.committed >= quantity)
        )
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
        payment=UNPAID if bought else "", unit_price=price or 0, theme=theme,
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


@prebuilt.statements
def _statements(postgres: bool) -> dict[str, str]:
    """The claim's write, prebuilt (storage/prebuilt.py): a claim's last message runs it."""
    p = "%s" if postgres else "?"
    return {
        "take_unit": "UPDATE share SET claimed = claimed + 1 "
        f"WHERE id = {p} AND claimed < quantity AND NOT released",
    }


def take_unit(share: Share, now: dt.datetime) -> None:
    """One unit claimed: a guarded UPDATE, so racing claims never take more than there is."""
    check(Move.CLAIM, share, now)
    if prebuilt.run("take_unit", (share.id,)).rowcount != 1:
        raise Invalid(Code.SHARE_USED_UP, share=share)
    share.claimed += 1


def swap_unit(
    share: Share, order: Order, gift_id: str, worth: int, now: dt.datetime, same: bool = False
) -> int:
    """The unit just claimed (take_unit) is taken as `gift_id` instead: one of it reserved
    with a guarded UPDATE (active, in stock, priced at most `worth`, or exactly that when
    `same`), the share's gift given its unit back. `order` is the order being made, which
    records both gifts. When the unit was bought, the books refund what it cost beyond the
    new gift's price; returns those fen. Raises Invalid(SWAP_GONE) when the gift is gone."""
    check(Move.SWAP, share, now)
    priced = (Gift.price == worth) if same else (Gift.price <= worth)
    taken = _stock(
        Gift.update(committed=Gift.committed + 1, updated_at=now).where(
            (Gift.id == gift_id)
            & (Gift.id != share.gift_id)
            & Gift.active
            & (Gift.stock - Gift.committed >= 1)
            & priced
        )  # fmt: skip
    )
    if taken != 1:
        raise Invalid(Code.SWAP_GONE, share=share)
    _release(share, 1)
    if share.payment != PAID:
        return 0
    price = Gift.select(Gift.price).where(Gift.id == gift_id).scalar()
    back = min(max(share.unit_price - price, 0), share.unit_price)
    if back:
        _books_of(share).unit_swapped(share, order, back, now)
    return back


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


def return_unit(share: Share, order: Order, now: dt.datetime) -> int:
    """A cancelled order's unit goes back to stock; the share keeps the claim on record.
    Returns the fen refunded for it (0 unless it was paid for)."""
    _stock(Gift.update(committed=Gift.committed - 1).where(Gift.id == order.gift_id))
    if share.payment != PAID:
        return 0
    return _books_of(share).unit_returned(share, order, now)


def _stock(update) -> int:
    """A change to gifts' units (the catalogue's version moves with it, by trigger): the
    version this transaction read before is forgotten."""
    changed = update.execute()
    hot.catalogue_changed()
    return changed


def _release(share: Share, units: int) -> None:
    if units:
        _stock(Gift.update(committed=Gift.committed - units).where(Gift.id == share.gift_id))


def _paid_back(share: Share, units: int, reason: str, now: dt.datetime) -> None:
    if units > 0 and share.payment == PAID:
        _books_of(share).paid_units_released(share, units, reason, now)


def _write(share: Share, **columns) -> None:
    Share.update(**columns).where(Share.id == share.id).execute()
    for name, value in columns.items():
        setattr(share, name, value)
