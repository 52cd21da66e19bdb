"""The durable outbox: every outside call (SMS, WeChat message) is a row first.

Usage::

    with write_transaction():                 # the same transaction as the order
        Order.create(...)
        enqueue("sms", f"sms:order:{no}", {"phone": ..., "text": ...})

    worker = Worker({"sms": Channel(send_sms, retry_seconds=30, max_attempts=8), ...}, Runner(4))
    await worker.run_once()                   # or: await worker.run(stop_event)

A row is claimed with a lease (so a worker killed mid-send is retried by
another once the lease runs out): `SELECT … FOR UPDATE SKIP LOCKED` on
PostgreSQL, and on SQLite an `UPDATE … WHERE` the row is still free that must
change exactly one row. The lease is per row and renewed just before its send,
so a slow batch never sends a row whose lease ran out; and every later update
is fenced with the lease this worker holds (`WHERE id = ? AND lease_until =
<mine> AND status = 'pending'`), so a worker that lost its lease can neither
mark a row sent twice nor put a sent row back to pending.

Failures back off exponentially; a permanent failure or the last attempt marks
the row `dead`. Senders get the payload and the row's reference (`outbox-<id>`,
which the SMS vendors echo as OutId / SessionContext, so a send that timed out
after the vendor took it can be matched), and raise an exception with a
`retryable` attribute; anything else counts as retryable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from peewee import fn

from bot import logs, metrics
from storage import hot
from storage.db import is_postgres, write_transaction
from storage.models import Outbox, utcnow
from storage.runner import Runner

log = logging.getLogger("gift_bot.outbox")

Sender = Callable[[dict, str], Awaitable[object]]  # (payload, the row's reference outbox-<id>)


def enqueue(kind: str, key: str, payload: dict) -> bool:
    """Add an effect unless one with this idempotency key exists; True when added."""
    return hot.enqueue(kind, key, payload, utcnow())


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
        }
        for r in query
    ]


def state(now: dt.datetime) -> tuple[dict[str, int], float]:
    """Rows by status, and how long the oldest pending row has waited (seconds; 0: none)."""
    rows = dict(Outbox.select(Outbox.status, fn.COUNT(Outbox.id)).group_by(Outbox.status).tuples())
    oldest = Outbox.select(fn.MIN(Outbox.created_at)).where(Outbox.status == "pending").scalar()
    return rows, max((now - oldest).total_seconds(), 0.0) if oldest else 0.0


def retry(row_id: int) -> bool:
    """Put a dead (or pending) row back in line, now; True when it was found."""
    return bool(
        Outbox.update(status="pending", next_attempt_at=utcnow(), lease_until=None, attempts=0)
        .where((Outbox.id == row_id) & (Outbox.status != "sent"))
        .execute()
    )


@dataclass(frozen=True)
class Channel:
    """How one kind of row leaves: its sender, and its own retry policy."""

    send: Sender
    retry_seconds: float  # the first retry's delay; it doubles with each attempt
    max_attempts: int  # then the row is dead


class Worker:
    def __init__(
        self,
        channels: dict[str, Channel],
        db: Runner,
        lease_seconds: float = 60.0,
        batch: int = 20,
        clock: Callable[[], dt.datetime] = utcnow,
    ):
        self.channels = channels
        self.db = db
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.batch = batch
        self.clock = clock
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """Work the outbox until `stop` is set; `wake` cuts an idle wait short."""
        while not stop.is_set():
            try:
                done = await self.run_once()
            except Exception:
                log.exception("outbox pass failed")
                done = 0
            if done:
                continue
            self.wake.clear()
            waits = [asyncio.ensure_future(e.wait()) for e in (stop, self.wake)]
            await asyncio.wait(waits, timeout=idle_seconds, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()

    async def run_once(self) -> int:
        """Send every due row once; returns how many were tried."""
        rows = await self.db.write(self.claim)  # database work off the event loop
        for row in rows:
            if await self.db.write(self.renew, row):
                await self.deliver(row)
        return len(rows)

    def claim(self) -> list[Outbox]:
        """Lease up to `batch` due rows; each row carries the lease it was given."""
        now = self.clock()
        due = (
            (Outbox.status == "pending")
            & (Outbox.next_attempt_at <= now)
            & (Outbox.lease_until.is_null() | (Outbox.lease_until < now))
        )
        taken = []
        with write_transaction():
            query = Outbox.select().where(due).order_by(Outbox.id).limit(self.batch)
            if is_postgres():
                query = query.for_update(skip_locked=True)
            for row in query:
                lease = now + self.lease
                changed = (
                    Outbox.update(lease_until=lease, attempts=Outbox.attempts + 1)
                    .where((Outbox.id == row.id) & due)
                    .execute()
                )
                if changed == 1:
                    row.attempts += 1
                    row.lease_until = lease
                    taken.append(row)
        return taken

    def renew(self, row: Outbox) -> bool:
        """Extend this row's lease right before its send; False when another worker has it."""
        lease = self.clock() + self.lease
        if not self._fenced(row, lease_until=lease):
            return False
        row.lease_until = lease
        return True

    async def deliver(self, row: Outbox) -> None:
        channel = self.channels.get(row.kind)
        try:
            if channel is None:
                raise LookupError(f"no sender for outbox kind {row.kind!r}")
            await channel.send(row.payload, reference(row.id))
        except Exception as exc:  # each failure is recorded on the row, never lost
            await self.db.write(self.failed, row, exc)
        else:
            await self.db.write(self.sent, row)

    def sent(self, row: Outbox) -> None:
        if self._fenced(row, status="sent", sent_at=self.clock(), lease_until=None, last_error=""):
            metrics.outbox_sent(row.kind, "sent")
            log.info(
                "outbox sent", extra={"outbox_id": row.id, "kind": row.kind, "key": _shown(row)}
            )

    def failed(self, row: Outbox, exc: Exception) -> None:
        channel = self.channels.get(row.kind)
        retryable = channel is not None and getattr(exc, "retryable", True)
        dead = not retryable or row.attempts >= channel.max_attempts
        delay = channel.retry_seconds * 2 ** (row.attempts - 1) if channel else 0
        final = "skipped" if getattr(exc, "skipped", False) else "dead"
        recorded = self._fenced(
            row,
            status=final if dead else "pending",
            lease_until=None,
            next_attempt_at=self.clock() + dt.timedelta(seconds=delay),
            last_error=f"{type(exc).__name__}: {exc}"[:1000],
        )
        if not recorded:
            return
        metrics.outbox_sent(row.kind, final if dead else "retry")
        (log.info if final == "skipped" else log.warning)(
            "outbox %s",
            final if dead else "will retry",
            extra={
                "outbox_id": row.id,
                "kind": row.kind,
                "key": _shown(row),
                "attempts": row.attempts,
                "error": logs.scrubbed(str(exc), _person(row)),
            },
        )

    def _fenced(self, row: Outbox, **values) -> bool:
        """Update the row only while this worker's lease on it holds; True when it did."""
        changed = (
            Outbox.update(**values)
            .where(
                (Outbox.id == row.id)
                & (Outbox.lease_until == row.lease_until)
                & (Outbox.status == "pending")
            )
            .execute()
        )
        if changed != 1:
            log.warning(
                "outbox lease lost; the row is another worker's", extra={"outbox_id": row.id}
            )
        return changed == 1


def _person(row: Outbox) -> str | None:
    """The OpenID a row is addressed to, if any (a WeChat message's `openid`)."""
    return row.payload.get("openid") if isinstance(row.payload, dict) else None


def _shown(row: Outbox) -> str:
    """The row's key as its log lines show it: never a raw OpenID (SECURITY.md)."""
    return logs.key_shown(row.key, _person(row))


def reference(row_id: int) -> str:
    """How an outbox row is named to the outside world (SMS OutId, webhook `key`)."""
    return f"outbox-{row_id}"
