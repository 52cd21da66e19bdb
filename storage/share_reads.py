"""What a share's pages read, written once as SQL (storage/prebuilt.py): the gift page is the
most opened page of all, and its reads were four queries built by peewee each time.

Usage::

    page = page_rows(token, openid)   # PageRows(share, catalogue version, their order, greeting)
    share_by_token(token); order_of(share_id, openid)
    share_by_token(token, openid)     # … and the order of openid, kept for its order_of
    greeting_rows(share_id)           # [GreetingRow(kind, status, file, words, seconds, reason)]
    record_visit(share_id, openid, now)   # once per visitor; a write nobody reads
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from storage import prebuilt
from storage.models import GreetingMedia, Order, Share, ShareVisit

_GREETING = ("kind", "status", "file", "words", "seconds", "reason")
_GREETING_FIELDS = [GreetingMedia._meta.fields[name] for name in _GREETING]
_SHARE_WIDTH, _ORDER_WIDTH = len(Share._meta.sorted_fields), len(Order._meta.sorted_fields)
_TOKEN = [f.name for f in Share._meta.sorted_fields].index("token")


class GreetingRow(NamedTuple):
    kind: str
    status: str
    file: str
    words: str
    seconds: float
    reason: str


class PageRows(NamedTuple):
    share: Share
    catalogue_version: int
    order: Order | None  # the visitor's order from this share
    greeting: list[GreetingRow]


def with_order(share: str, order: str, p: str) -> str:
    """The columns of a share and of one person's order from it (the first parameter), and
    the join between them: what `share_row_and_order` reads."""
    return (
        f"{prebuilt.columns(Share, share)}, {prebuilt.columns(Order, order)} FROM share AS "
        f'{share} LEFT JOIN "order" AS {order} ON {order}.share_id = {share}.id '
        f"AND {order}.recipient_id = {p}"
    )


@prebuilt.statements
@functools.cache
def _statements(postgres: bool) -> dict[str, str]:
    p = "%s" if postgres else "?"
    greeting = ", ".join(f"g.{c}" for c in _GREETING)
    return {
        "share_by_token": f"SELECT {prebuilt.columns(Share)} FROM share WHERE token = {p}",
        "order_of": f'SELECT {prebuilt.columns(Order)} FROM "order" WHERE share_id = {p} '
        f"AND recipient_id = {p}",
        "share_and_order": f"SELECT {with_order('s', 'o', p)} WHERE s.token = {p}",
        "greeting_rows": f"SELECT {', '.join(_GREETING)} FROM greeting_media WHERE share_id = {p}",
        # One row per greeting medium (at most one per kind), at least one: the share, the
        # catalogue's version, the visitor's order.
        "page_rows": f"SELECT {prebuilt.columns(Share, 's')}, "
        "(SELECT version FROM catalogue_version WHERE id = 1), "
        f"{prebuilt.columns(Order, 'o')}, {greeting} FROM share AS s "
        f'LEFT JOIN "order" AS o ON o.share_id = s.id AND o.recipient_id = {p} '
        f"LEFT JOIN greeting_media AS g ON g.share_id = s.id WHERE s.token = {p}",
        "record_visit": f"INSERT INTO share_visit (share_id, openid, first_seen) "
        f"VALUES ({p}, {p}, {p}) ON CONFLICT DO NOTHING",
    }


def share_by_token(token: str, openid: str | None = None) -> Share | None:
    """The share with this claim token (its gift not loaded): the one the message's opening
    statement read, the first time it is asked for in that transaction, else read now. With
    `openid`, that person's order from it is read in the same statement, for the next
    `order_of` of it in this transaction (a claim asks for it next: a round trip saved)."""
    row = _opened.take(token)
    if row is None and openid is not None:
        return share_row_and_order(prebuilt.run("share_and_order", (openid, token)), openid)
    if row is None:
        row = prebuilt.run("share_by_token", (token,)).fetchone()
    return prebuilt.instance(Share, row)


def share_row_and_order(cursor, openid: str) -> Share | None:
    """The share of a `with_order` statement's row, its order kept for `order_of`."""
    row = cursor.fetchone()
    if row is None:
        return None
    share = prebuilt.instance(Share, row[:_SHARE_WIDTH])
    order_row = row[_SHARE_WIDTH:]
    order = prebuilt.instance(Order, order_row) if order_row[0] is not None else None
    _orders.keep((share.id, openid), (order,))
    return share


_orders = prebuilt.Ahead()  # (the order or None,), by (share id, openid): read with the share


def opened(row: tuple) -> None:
    """The share a message's opening statement read (storage/hot.py, PostgreSQL): the share
    its conversation's context names, all NULL for none. Kept for this transaction's first
    `share_by_token` of it, which comes before the message writes anything: the claim form
    reads it at every step."""
    _opened.keep(row[_TOKEN] if row and row[0] is not None else None, row)


_opened = prebuilt.Ahead()  # the share's row, by its token


def order_of(share_id: int, openid: str) -> Order | None:
    """The order `openid` made from this share, if any (as read with the share, the first
    time it is asked for after that read, in the same transaction)."""
    kept = _orders.take((share_id, openid))
    if kept is not None:
        return kept[0]
    return prebuilt.instance(Order, prebuilt.run("order_of", (share_id, openid)).fetchone())


def greeting_rows(share_id: int) -> list[GreetingRow]:
    return [_greeting(row) for row in prebuilt.run("greeting_rows", (share_id,)).fetchall()]


def page_rows(token: str, openid: str | None) -> PageRows | None:
    """Everything the gift page reads, in one statement; None for no such share."""
    rows = prebuilt.run("page_rows", (openid, token)).fetchall()
    if not rows:
        return None
    first = rows[0]
    share = prebuilt.instance(Share, first[:_SHARE_WIDTH])
    at = _SHARE_WIDTH + 1
    order_row = first[at : at + _ORDER_WIDTH]
    order = prebuilt.instance(Order, order_row) if order_row[0] is not None else None
    greeting = [_greeting(row[at + _ORDER_WIDTH :]) for row in rows]
    return PageRows(share, first[_SHARE_WIDTH] or 0, order, [g for g in greeting if g.kind])


def record_visit(share_id: int, openid: str, now: Any) -> None:
    """Remember that `openid` opened the share (the first time only)."""
    seen = ShareVisit.first_seen.db_value(now)
    prebuilt.defer("record_visit", (share_id, openid, seen))


def _greeting(row: tuple) -> GreetingRow:
    return GreetingRow(*(f.python_value(v) for f, v in zip(_GREETING_FIELDS, row, strict=True)))
