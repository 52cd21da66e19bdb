"""Claims and orders (S13, S14): exactly one order per recipient per share, whatever the races.

Usage::

    refusal = claim_refusal(share, "o_b", now)   # None, or the code that says why not
    order, created = place(notices, token, "o_b", OrderAnswers(...), channel="web", now=now)
    place(notices, token, "o_b", answers, "chat", now, swap_to="mooncake")   # another gift

`place` runs one transaction: lock the share, refuse what cannot be claimed,
take one unit with a guarded UPDATE (taken as another gift when the recipient swapped:
bot/gifting/swap.py), create the order and queue its SMS and the giver's notice in the
outbox. A double submit finds the order already made
(the unique share+recipient index makes sure) and returns it with created=False.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import peewee

from bot import metrics, visitors
from bot.codes import Code
from bot.forms.base import Invalid
from bot.forms.order import OrderAnswers
from bot.gifting import catalogue, draws, life, mobile_claims, shares, surprise, swap
from bot.outgoing.notices import Notices
from storage import hot, orders_sql, share_reads
from storage.db import after_commit, write_transaction
from storage.models import Gift, Order, Share

ORDER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read aloud on the phone


def claim_refusal(share: Share | None, openid: str | None, now: dt.datetime) -> Code | None:
    """Why this person cannot claim this share now; None when they can."""
    if share is None:
        return Code.SHARE_UNKNOWN
    if openid and existing_order(share, openid):
        return Code.ALREADY_CLAIMED
    return open_refusal(share, openid, now)


def open_refusal(share: Share, openid: str | None, now: dt.datetime) -> Code | None:
    """The refusals that do not depend on an order already made (the giver never has one):
    the giver's own (by OpenID, or a mobile they used), the share's state (bot/gifting/life/:
    nothing is claimed that was not paid for), then who may claim it."""
    if why := visitors.own_share_refusal(share, openid):
        return why
    if why := life.refusal(life.Move.CLAIM, share, now):
        return why
    if draws.is_draw(share):
        return draws.claim_refusal(share, openid, now)
    return None


def form_subject(
    share: Share, address_hint: str | None = None, taken: Any = None,
    choices: list | None = None, swapping: bool = False,
) -> dict:  # fmt: skip
    """What the order form is about: the share's gift (its variants; a surprise's wrapping),
    or the gift taken instead (`taken`); the gifts on offer instead (`choices`, asked for once
    the recipient said 换: `swapping`); a place the recipient sent as a location, which an
    address may lean on."""
    return {
        "gift": taken or surprise.as_seen(share), "share": share, "address_hint": address_hint,
        "swapped": taken is not None, "choices": choices or [], "swapping": swapping,
    }  # fmt: skip


def existing_order(share: Share, openid: str) -> Order | None:
    return share_reads.order_of(share.id, openid)


def place(
    notices: Notices,
    token: str,
    openid: str,
    answers: OrderAnswers,
    channel: str,
    now: dt.datetime,
    swap_to: str = "",
) -> tuple[Order, bool]:
    """Turn validated answers into the one order of `openid` for this share (of the gift
    `swap_to` instead, when given)."""
    try:
        with write_transaction():
            order, created = _place(notices, token, openid, answers, channel, now, swap_to)
    except peewee.IntegrityError:
        # A concurrent submit by the same person won the unique index: show theirs.
        share = shares.by_token(token)
        order = share and existing_order(share, openid)
        if order is None:
            raise
        return order, False
    return order, created


def _place(notices, token, openid, answers, channel, now, swap_to=""):
    hot.touch_user(openid, now)  # a visitor known only by cookie is recorded before ordering
    share = orders_sql.share_locked(token, openid)  # with this person's order, if any
    if share is None:
        raise Invalid(Code.SHARE_UNKNOWN)
    if order := existing_order(share, openid):
        return order, False
    refusal = open_refusal(share, openid, now) or mobile_claims.order_refusal(share, openid)
    if refusal:
        raise Invalid(refusal)
    life.take_unit(share, now)
    chosen = {"variant": share.variant} if share.variant and not swap_to else {}
    order = _create_with_unique_number(
        share=share.id,
        gift=swap_to or share.gift_id,
        swapped_from=share.gift_id if swap_to else "",
        recipient=openid,
        channel=channel,
        created_at=now,
        **(answers.to_columns() | chosen),
    )
    if swap_to:  # the order names both gifts; now the stock follows (the unit is the new gift's)
        share.gift = Gift.get_by_id(share.gift_id)
        order.refunded = swap.swap_into(notices.config, share, order, swap_to, now)
    gift = catalogue.get(order.gift_id)  # the catalogue's own copy: no query while it holds
    if not swap_to:
        share.gift = gift  # what the notices name
    order.share, order.gift = share, gift
    notices.order_placed(order)
    after_commit(lambda: metrics.ordered(channel))
    return order, True


def _create_with_unique_number(**fields) -> Order:
    """The order, under a number of its own (a clash of numbers draws again); IntegrityError
    when this person has an order from this share already (a concurrent claim won)."""
    for _ in range(5):
        order = Order(order_no=new_order_no(fields["created_at"]), **fields)
        if orders_sql.insert_order(order) is not None:
            return order
        if share_reads.order_of(fields["share"], fields["recipient"]) is not None:
            raise peewee.IntegrityError("an order of this person from this share exists")
    raise RuntimeError("could not find a free order number")


def new_order_no(now: dt.datetime) -> str:
    """Like G261126-7KQ3X: a date to sort by, then 5 characters hard to misread (28M a day)."""
    tail = "".join(secrets.choice(ORDER_ALPHABET) for _ in range(5))
    return f"G{now:%y%m%d}-{tail}"


def by_number(order_no: str | None) -> Order | None:
    return Order.get_or_none(Order.order_no == order_no) if order_no else None


def of_recipient(openid: str, limit: int = 10) -> list[Order]:
    return list(
        Order.select(Order, Gift)
        .join(Gift)
        .where(Order.recipient == openid)
        .order_by(Order.created_at.desc())
        .limit(limit)
    )


def for_export(status: str | None = None) -> list[Order]:
    query = (
        Order.select(Order, Gift, Share)
        .join(Gift)
        .switch(Order)
        .join(Share)
        .order_by(Order.created_at, Order.id)
    )
    if status:
        query = query.where(Order.status == status)
    return list(query)


def news_for(share_ids: list[int]) -> tuple[dict[int, list[str]], dict[int, int]]:
    """What a giver hears of these shares' orders, by share: the thank-you notes left (oldest
    first) and how many orders were cancelled; one query."""
    notes: dict[int, list[str]] = {}
    cancelled: dict[int, int] = {}
    query = (
        Order.select(Order.share, Order.thanks, Order.status)
        .where(Order.share.in_(share_ids) & ((Order.thanks != "") | (Order.status == "cancelled")))
        .order_by(Order.thanked_at)
    )
    for share_id, note, status in query.tuples():
        if note:
            notes.setdefault(share_id, []).append(note)
        if status == "cancelled":
            cancelled[share_id] = cancelled.get(share_id, 0) + 1
    return notes, cancelled
