"""The outbox worker's statements, written once as SQL (storage/prebuilt.py): every SMS and
notice a claim makes is leased, marked and recorded by the worker, and building those queries
with peewee cost more than running them (issue 27: a fifth of a claim's background work).

Usage (the worker's writes, each one statement; bot/outgoing/outbox.py)::

    rows = claim(now, until, 20)              # due rows leased, oldest first, an attempt counted
    fenced(row.id, row.lease_until, {"status": "sent", …})   # True: the lease was still ours
    person("o_abc")                           # the User a notice goes to, or None (its sender)

`fenced` sets one of MOVES' column sets (the worker's moves), and only while the row is
pending under the lease the worker holds: a worker that lost its lease changes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from storage import prebuilt
from storage.models import Outbox, User

# The columns each of the worker's moves sets (bot/outgoing/outbox.py).
MOVES = {
    "renew": ("lease_until",),
    "sending": ("in_doubt_since",),
    "waiting": ("lease_until", "attempts", "next_attempt_at", "last_error"),
    "sent": ("status", "sent_at", "lease_until", "last_error", "in_doubt_since", "sent_by"),
    "failed": ("status", "lease_until", "next_attempt_at", "last_error", "in_doubt_since"),
}
_MOVE_OF = {frozenset(columns): move for move, columns in MOVES.items()}
_FIELDS = Outbox._meta.fields


@prebuilt.statements
@functools.cache
def _statements(postgres: bool) -> dict[str, str]:
    p = "%s" if postgres else "?"
    free = f"status = 'pending' AND next_attempt_at <= {p} AND (lease_until IS NULL OR lease_until < {p})"
    skip = " FOR UPDATE SKIP LOCKED" if postgres else ""  # SQLite: the writer's lock
    held = f"lease_until IS NOT DISTINCT FROM {p}" if postgres else f"lease_until IS {p}"
    leased = f"lease_until = {p}, attempts = attempts + 1"
    picked = f"SELECT id FROM outbox WHERE {free} ORDER BY id LIMIT {p}{skip}"
    sql = {
        # One statement leases a pass's rows (a statement each, and one to find them, before).
        # PostgreSQL: the rows are picked and locked once, skipping those another worker holds.
        "outbox_claim": (
            f"WITH picked AS MATERIALIZED ({picked}) UPDATE outbox AS o SET {leased} "
            f"FROM picked WHERE o.id = picked.id RETURNING {prebuilt.columns(Outbox, 'o')}"
            if postgres
            else f"WITH picked AS ({picked}) UPDATE outbox SET {leased} "
            f"WHERE id IN (SELECT id FROM picked) RETURNING {prebuilt.columns(Outbox)}"
        ),
        "outbox_person": f'SELECT {prebuilt.columns(User)} FROM "user" WHERE openid = {p}',
    }
    for move, columns in MOVES.items():
        sets = ", ".join(f"{column} = {p}" for column in columns)
        sql[f"outbox_{move}"] = (
            f"UPDATE outbox SET {sets} WHERE id = {p} AND {held} AND status = 'pending'"
        )
    return sql


def claim(now: dt.datetime, until: dt.datetime, limit: int) -> list[Outbox]:
    """Lease up to `limit` rows due at `now` and free (no lease, or one run out) until `until`,
    an attempt counted on each; the rows as they are now, oldest first."""
    at = _FIELDS["next_attempt_at"].db_value(now)
    until_ = _FIELDS["lease_until"].db_value(until)
    rows = prebuilt.run("outbox_claim", (at, at, limit, until_)).fetchall()
    return sorted((prebuilt.instance(Outbox, row) for row in rows), key=lambda row: row.id)


def fenced(row_id: int, held: dt.datetime | None, values: dict[str, Any]) -> bool:
    """Set `values` (exactly one move's columns) while the row is pending and its lease is
    still `held`; True when it was."""
    move = _MOVE_OF[frozenset(values)]
    params = [_FIELDS[column].db_value(values[column]) for column in MOVES[move]]
    params += [row_id, _FIELDS["lease_until"].db_value(held)]
    return prebuilt.run(f"outbox_{move}", params).rowcount == 1


def person(openid: str) -> User | None:
    """The user a notice is for, or None: bot/outgoing/channels.py reads them this one way for
    what reaches them (at every WeChat notice) and for what a page promises them."""
    return prebuilt.instance(User, prebuilt.run("outbox_person", (openid,)).fetchone())
