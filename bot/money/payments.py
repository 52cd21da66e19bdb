"""The giver pays ([payments] mode "wechatpay"): the rules of shares bought, each step one
transaction (the books operators read are bot/money/paybooks.py).

Usage (each call inside the transaction that the runner or the caller holds)::

    share = create_unpaid(config, "o_giver", "tea-longjing", 2, "生日快乐", now)   # stock held
    order = start_attempt(token, "o_giver", now)     # a new out_trade_no; earlier ones closed
    outcome = settle_paid(notices, config, "T…", "4200…", now)   # "paid" | "repeat" | "refund"
    Books()                                          # what a share's moves do to money
    settle_refund(notices, "R…", "SUCCESS", refund_id, now)   # never backwards; the giver told
    numbers = quiet_orders(now, now - every)         # a batch for reconciliation to ask about

A share bought is `unpaid` (its stock held `hold_minutes`, its claim link not ready) until a
notification or a query proves a payment; then `paid`, and its expiry counts from then. An
unpaid share whose hold ends is released like any expired share and becomes `lapsed`: its
open orders are closed at WeChat Pay through the outbox. Money that must go back — units
unclaimed at expiry, a revoked share's units, a cancelled order, a payment that came after
the hold or twice — is a `Refund` row with a unique `cause`, written in the transaction that
caused it, and sent through the outbox (`wechatpay_refund`), so it happens exactly once; when
WeChat Pay says it succeeded, the giver is told what it was for and how much, once. A
unit a recipient took as a cheaper gift ([shares] swap) refunds the difference
(`swapped:<order>`); cancelling that order later refunds what is left of the unit.
"""

from __future__ import annotations

import datetime as dt
import secrets

from bot.codes import Code
from bot.config import Config
from bot.forms.base import Invalid
from bot.forms.draw import DRAW_MIN_MINUTES
from bot.gifting import cards, catalogue, life, shares
from bot.money.refunds import add_refund, charging_order, swap_refunded
from bot.outgoing.notices import Notices
from bot.outgoing.outbox import enqueue
from storage.db import locked, write_transaction
from storage.models import Gift, Order, PayOrder, Refund, Share

OPEN, CLOSED = "open", "closed"
FINAL_REFUND = ("success", "closed")
REFUND_RANK = {"pending": 0, "processing": 1, "abnormal": 2, "success": 3, "closed": 3}
CLOSE = "wechatpay_close"  # the outbox kind of closing a pay order (refunds: bot/money/refunds.py)
RECONCILE_BATCH = 20  # orders, and refunds, asked about per round


def create_unpaid(
    config: Config, giver: str, gift_id: str, quantity: int, blessing: str, now: dt.datetime,
    **kind,
) -> Share:  # fmt: skip
    """A share (of any kind: `kind`, `draw_at`, `variant` as shares.create takes them) whose
    stock is held `hold_minutes` until it is paid for, at the gift's price now."""
    with write_transaction():
        price = Gift.select(Gift.price).where(Gift.id == gift_id).scalar()
        hold_until = now + dt.timedelta(minutes=config.payments.hold_minutes)
        return shares.create(
            config, giver, gift_id, quantity, blessing, now, price=price, hold_until=hold_until,
            **kind,
        )  # fmt: skip


def amount_of(share: Share) -> int:
    return share.unit_price * share.quantity


def pay_refusal(share: Share, openid: str | None, now: dt.datetime) -> Code | None:
    """Why this visitor cannot pay for this share now; None when they can."""
    if share.giver_id != openid:
        return Code.PAY_NOT_GIVER
    if why := life.refusal(life.Move.PAY, share, now):
        return why
    if share.expires_at <= now:  # the hold ended; the sweep has not come by yet
        return Code.PAY_LAPSED
    return None


def start_attempt(token: str, openid: str, now: dt.datetime) -> PayOrder:
    """A new attempt to pay (its own out_trade_no); earlier open ones are closed, so one
    payment at most can succeed while the share waits. Raises Invalid(Code.PAY_…)."""
    share = locked(Share.select().where(Share.token == token)).first()
    if share is None:
        raise Invalid(Code.SHARE_UNKNOWN)
    if refusal := pay_refusal(share, openid, now):
        raise Invalid(refusal)
    close_open(share.id)
    order = PayOrder.create(
        out_trade_no=f"T{now:%y%m%d%H%M%S}{secrets.token_hex(5).upper()}",
        share=share.id,
        payer=openid,
        amount=amount_of(share),
        created_at=now,
        time_expire=share.expires_at,
    )
    share.gift = catalogue.get(share.gift_id)
    order.share = share
    return order


def keep_prepay(out_trade_no: str, prepay_id: str) -> None:
    PayOrder.update(prepay_id=prepay_id).where(PayOrder.out_trade_no == out_trade_no).execute()


def by_trade_no(out_trade_no: str) -> PayOrder | None:
    return PayOrder.get_or_none(PayOrder.out_trade_no == out_trade_no)


def settle_paid(
    notices: Notices, config: Config, out_trade_no: str, transaction_id: str, now: dt.datetime
) -> str:
    """WeChat Pay proved this order paid (a checked notification or query). Acts once:
    "paid" (the share is paid; the giver gets the card), "refund" (the share was paid by
    another attempt, or its hold had ended: all of it goes back), "repeat" (acted on before)."""
    order = locked(PayOrder.select().where(PayOrder.out_trade_no == out_trade_no)).first()
    if order is None or order.status == "paid":
        return "repeat"
    share = locked(Share.select().where(Share.id == order.share_id)).get()
    took = (
        PayOrder.update(status="paid", transaction_id=transaction_id, paid_at=now)
        .where((PayOrder.id == order.id) & (PayOrder.status != "paid"))
        .execute()
    )
    if took != 1:
        return "repeat"
    order.status, order.transaction_id, order.paid_at = "paid", transaction_id, now
    lead = dt.timedelta(minutes=DRAW_MIN_MINUTES)
    if not life.pay(share, now, config.shares.expire_hours, lead):  # paid twice, or too late
        reason = "duplicate" if share.payment == life.PAID else "late"
        add_refund(order, share, share.quantity, order.amount, reason, f"{reason}:{order.id}", now)
        return "refund"
    share.gift = Gift.get_by_id(share.gift_id)
    close_open(share.id)  # this order is paid now, so it is not among them
    _send_card(notices, config, share)
    return "paid"


def _send_card(notices: Notices, config: Config, share: Share) -> None:
    """The share's card to forward, as a free share's 确认 answers it."""
    card = cards.share_card(config, notices.renderer, share)
    notices.paid(share, {"title": card.title, "description": card.description, "url": card.url,
                         "picurl": card.picurl})  # fmt: skip


def queue_close(out_trade_no: str) -> None:
    """Close this order at WeChat Pay, through the outbox (once per order)."""
    enqueue(CLOSE, f"pay:close:{out_trade_no}", {"out_trade_no": out_trade_no})


def close_open(share_id: int) -> None:
    """Close every open order of this share at WeChat Pay."""
    for (number,) in (
        PayOrder.select(PayOrder.out_trade_no)
        .where((PayOrder.share == share_id) & (PayOrder.status == OPEN))
        .tuples()
    ):
        queue_close(number)


def mark_closed(out_trade_no: str, now: dt.datetime) -> None:
    PayOrder.update(status=CLOSED, closed_at=now).where(
        (PayOrder.out_trade_no == out_trade_no) & (PayOrder.status == OPEN)
    ).execute()


# -- money going back --------------------------------------------------------------------


class Books:
    """Money's side of a share's moves (bot/gifting/life/ calls it in the move's
    transaction): what was paid for and goes back is refunded; what was not is closed."""

    def paid_units_released(self, share: Share, units: int, reason: str, now: dt.datetime):
        charge = charging_order(share.id)
        if charge is not None:
            amount = share.unit_price * units
            add_refund(charge, share, units, amount, reason, f"{reason}:{share.id}", now)

    def lapsed(self, share: Share, now: dt.datetime) -> None:
        close_open(share.id)

    def unit_returned(self, share: Share, order: Order, now: dt.datetime) -> int:
        """A cancelled order's unit: what it cost, less what its swap refunded already; the
        fen refunded (once: 0 when the cause had its refund)."""
        charge = charging_order(share.id)
        left = share.unit_price - swap_refunded(order.id)
        if charge is None or left <= 0:
            return 0
        refund = add_refund(charge, share, 1, left, "cancelled", f"cancelled:{order.id}", now)
        return refund.amount if refund else 0

    def unit_swapped(self, share: Share, order: Order, fen: int, now: dt.datetime) -> None:
        """A unit taken as a cheaper gift: the difference goes back, once per order, never
        more than the unit cost."""
        charge = charging_order(share.id)
        fen = min(fen, share.unit_price)
        if charge is not None and fen > 0:
            add_refund(charge, share, 0, fen, "swapped", f"swapped:{order.id}", now)


life.keep_books(Books())


def refund_to_send(out_refund_no: str) -> tuple[Refund, PayOrder] | None:
    refund = Refund.get_or_none(Refund.out_refund_no == out_refund_no)
    return (refund, PayOrder.get_by_id(refund.pay_order_id)) if refund else None


def settle_refund(
    notices: Notices, out_refund_no: str, status: str, refund_id: str, now: dt.datetime,
    error: str = "",
) -> bool:  # fmt: skip
    """A refund's state from WeChat Pay (answer, notification or query): it only moves
    forward, and a final state stays. True when it changed; once it succeeded, the giver is
    told, in this transaction (once: the state changes to success once, the notice's key is
    unique)."""
    status = status.lower()
    refund = locked(Refund.select().where(Refund.out_refund_no == out_refund_no)).first()
    if refund is None or status not in REFUND_RANK or refund.status in FINAL_REFUND:
        return False
    if REFUND_RANK[status] < REFUND_RANK[refund.status]:
        return False
    values = {"status": status, "updated_at": now, "last_error": error}
    if refund_id:
        values["refund_id"] = refund_id
    Refund.update(**values).where(Refund.id == refund.id).execute()
    if status == "success" and refund.status != "success":
        share = Share.get_by_id(refund.share_id)
        share.gift = Gift.get_by_id(share.gift_id)
        notices.refunded(share, refund)
    return status != refund.status


def refund_failed(out_refund_no: str, error: str, now: dt.datetime) -> None:
    Refund.update(last_error=error[:1000], updated_at=now).where(
        Refund.out_refund_no == out_refund_no
    ).execute()


# -- what reconciliation asks WeChat Pay about ------------------------------------------


def quiet_orders(now: dt.datetime, before: dt.datetime) -> list[str]:
    """Open orders made before `before` and not asked about since."""
    quiet = (
        (PayOrder.status == OPEN)
        & (PayOrder.created_at <= before)
        & (PayOrder.checked_at.is_null() | (PayOrder.checked_at <= before))
    )
    return _take(PayOrder.out_trade_no, quiet, checked_at=now)


def quiet_refunds(now: dt.datetime, before: dt.datetime) -> list[str]:
    quiet = Refund.status.in_(("processing", "abnormal")) & (Refund.updated_at <= before)
    return _take(Refund.out_refund_no, quiet, updated_at=now)


def _take(number, quiet, **stamp) -> list[str]:
    """A batch of the numbers that are `quiet`, each stamped so it is no longer: another
    worker leaves them be this round."""
    model = number.model
    numbers = [n for (n,) in model.select(number).where(quiet).limit(RECONCILE_BATCH).tuples()]
    return [n for n in numbers if model.update(**stamp).where(quiet & (number == n)).execute()]
