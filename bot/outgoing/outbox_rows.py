"""The outbox's rows as operators see and move them: the listing, the counts by status, a retry.

Usage::

    listing("dead")            # [{"id", "kind", "key", "status", "attempts", …}], oldest first
    state(now)                 # ({"pending": 3, "sent": 40}, seconds the oldest pending waited)
    retry(row_id)              # (status before, row): a dead, skipped or pending row goes again

The rows themselves, their sending and leases are bot/outgoing/outbox.py's.
"""

from __future__ import annotations

import datetime as dt

from peewee import fn

from bot.outgoing.outbox import iso
from storage.models import Outbox, utcnow


def listing(status: str | None = None) -> list[dict]:
    """Every row (or those in `status`), oldest first, as operators read them."""
    query = Outbox.select().order_by(Outbox.id)
    if status:
        query = query.where(Outbox.status == status)
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "key": r.key,
            "status": r.status,
            "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at.isoformat(timespec="seconds") + "Z",
            "last_error": r.last_error,
            "in_doubt_since": iso(r.in_doubt_since),
            "sent_by": r.sent_by,
        }
        for r in query
    ]


def state(now: dt.datetime) -> tuple[dict[str, int], float]:
    """Rows by status, and how long the oldest pending row has waited (seconds; 0: none)."""
    rows = dict(Outbox.select(Outbox.status, fn.COUNT(Outbox.id)).group_by(Outbox.status).tuples())
    oldest = Outbox.select(fn.MIN(Outbox.created_at)).where(Outbox.status == "pending").scalar()
    return rows, max((now - oldest).total_seconds(), 0.0) if oldest else 0.0


def retry(row_id: int) -> tuple[str | None, Outbox | None]:
    """Put a dead, skipped or pending row back in line, now. Returns the row's status before
    and the row: (None, None) when there is none, ("sent", row) when it went already (a sent
    call is never made again)."""
    row = Outbox.get_or_none(Outbox.id == row_id)
    if row is None or row.status == "sent":
        return (row and row.status), row
    moved = (
        Outbox.update(status="pending", next_attempt_at=utcnow(), lease_until=None, attempts=0)
        .where((Outbox.id == row_id) & (Outbox.status != "sent"))
        .execute()
    )
    return (row.status if moved else "sent"), row
