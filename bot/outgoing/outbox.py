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
change exactly one row. The lease is per row and renewed right before its send
(unless the row was claimed a second ago), so a slow batch never sends a row
whose lease ran out; and every later update is fenced with the
lease this worker holds (`WHERE id = ? AND lease_until = <mine> AND status =
'pending'`), so a worker that lost its lease can neither mark a row sent twice
nor put a sent row back to pending.

A pass's rows leave side by side, a lane per person, each lane's rows in order
(bot/outgoing/outbox_lanes.py).

Failures back off exponentially; a permanent failure or the last attempt marks
the row `dead`. Senders get the payload and the row's reference (`outbox-<id>`,
which the SMS vendors echo as OutId / SessionContext), and raise an exception with a
`retryable` attribute; anything else counts as retryable.

A call that is not idempotent (an SMS) may have gone when its answer never came. A
channel with a `check` marks each send before it starts (`in_doubt_since`); an
exception whose `in_doubt` is False (the vendor answered, or was never reached) clears
the mark, anything else keeps it, and so does a worker that dies mid-send. The next
attempt at a marked row asks `check` first: gone → `sent`, no second call; not shown
yet → ask again after the retry delay, the attempt given back; still not shown once
`records_lag_seconds` have passed since the doubtful send → send again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot import logs, metrics
from bot.outgoing import outbox_lanes
from bot.outgoing.outbox_records import Records
from storage import hot, outbox_sql
from storage.models import Outbox, utcnow
from storage.runner import Runner

log = logging.getLogger("gift_bot.outbox")
FRESH = dt.timedelta(seconds=1)  # a lease this young goes to its send without a renewal

# (payload, the row's reference outbox-<id>); a sender may return how it went (outbox.sent_by)
Sender = Callable[[dict, str], Awaitable[object]]
# (payload, reference, since, now): whether the outside world took this row's call since then.
Checker = Callable[[dict, str, dt.datetime, dt.datetime], Awaitable[bool]]


def enqueue(kind: str, key: str, payload: dict, *, answer: bool = True) -> bool | None:
    """Add an effect unless one with this idempotency key exists; True when added. With
    `answer` false nobody asks: inside a transaction on PostgreSQL the row then goes with the
    transaction's next statement or its COMMIT, a round trip saved (None is returned)."""
    return hot.enqueue(kind, key, payload, utcnow(), answer=answer)


@dataclass(frozen=True)
class Channel:
    """How one kind of row leaves: its sender, and its own retry policy."""

    send: Sender
    retry_seconds: float  # the first retry's delay; it doubles with each attempt
    max_attempts: int  # then the row is dead
    # Asked before sending again after an attempt nobody saw end; None: send again blindly.
    check: Checker | None = None
    records_lag_seconds: float = 0.0  # how long `check` may not yet show a call that went


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
        self.records = Records(db)  # each send's outcome goes with the next write
        self.drained = False  # the last pass's last lease found no row due
        self.busy: Callable[[], bool] = _never  # the server's: its messages queue (one lane)

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """Work the outbox until `stop` is set; `wake` cuts an idle wait short. A pass's last
        record goes with the next pass's lease, which follows at once while rows are due
        (bot/outgoing/outbox_records.py), or is written before an idle wait and at the stop."""
        while not stop.is_set():
            try:
                done = await self.run_once(record=False)
                if not done or self.drained:  # its last lease found none due: wait
                    await self.records.flush()
            except Exception:
                log.exception("outbox pass failed")
                done = 0
            if done and not self.drained:
                continue
            self.wake.clear()
            waits = [asyncio.ensure_future(e.wait()) for e in (stop, self.wake)]
            await asyncio.wait(waits, timeout=idle_seconds, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
        await self.records.flush()

    async def run_once(self, record: bool = True) -> int:
        """Send every due row once (those that fall due as lanes free up too, up to
        outbox_lanes.MOST_CLAIMED); returns how many were tried. With `record` false the
        last send's record may still wait for the worker's next write."""
        rows = await self._claim_more()
        sent, self.drained = await outbox_lanes.send(
            rows, self._send, self.records.flush, self._claim_more, self.batch, self.busy
        )
        if record:
            await self.records.flush()
        return sent

    async def _claim_more(self) -> list[Outbox]:
        """The pass's next lease, after the records waiting."""
        return await self.records.write(self.claim)

    async def _send(self, row: Outbox) -> None:
        if self._just_claimed(row) or await self.records.write(self.renew, row):
            await self.deliver(row)

    def _just_claimed(self, row: Outbox) -> bool:
        """Claimed within FRESH: its lease is about as long as a renewal would make it."""
        return row.lease_until - self.clock() >= self.lease - FRESH

    def claim(self) -> list[Outbox]:
        """Lease up to `batch` due rows; each row carries the lease it was given."""
        now = self.clock()  # one statement; PostgreSQL skips the rows another worker has locked
        return outbox_sql.claim(now, now + self.lease, self.batch)

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
            if channel.check is not None:
                if row.in_doubt_since is not None:
                    went = await self._ask(channel, row)
                    if went or self._too_soon(channel, row):
                        self.records.later(self.sent if went else self.waiting, row)
                        return
                if not await self.records.write(self.sending, row):
                    return
            else:
                await self.records.flush()  # before a call nobody can ask about afterwards
            went = await channel.send(row.payload, reference(row.id))
        except Exception as exc:  # each failure is recorded on the row, never lost
            self.records.later(self.failed, row, exc)
        else:
            self.records.later(self.sent, row, went if isinstance(went, str) else "")

    async def _ask(self, channel: Channel, row: Outbox) -> bool:
        try:
            return await channel.check(
                row.payload, reference(row.id), row.in_doubt_since, self.clock()
            )
        except Exception as exc:
            raise CannotTell(exc) from exc

    def _too_soon(self, channel: Channel, row: Outbox) -> bool:
        """Whether the records may still not show a call that went (then ask again later)."""
        return self.clock() - row.in_doubt_since < dt.timedelta(seconds=channel.records_lag_seconds)

    def sending(self, row: Outbox) -> bool:
        """Mark the send about to start: until its end is seen, the row is in doubt."""
        now = self.clock()
        if not self._fenced(row, in_doubt_since=now):
            return False
        row.in_doubt_since = now
        return True

    def waiting(self, row: Outbox) -> None:
        """The records do not show the doubtful send yet: ask again after the retry delay
        (no later than when they must show it); asking was not an attempt."""
        channel = self.channels[row.kind]
        tried = max(row.attempts - 1, 1)
        settled = row.in_doubt_since + dt.timedelta(seconds=channel.records_lag_seconds)
        now = self.clock()
        next_at = min(now + dt.timedelta(seconds=channel.retry_seconds * 2 ** (tried - 1)), settled)
        self._fenced(
            row,
            lease_until=None,
            attempts=row.attempts - 1,
            next_attempt_at=max(next_at, now),
            last_error=f"in doubt since {iso(row.in_doubt_since)}: not in the records yet; "
            "asking again before sending again",
        )

    def sent(self, row: Outbox, by: str = "") -> None:
        done = {
            "sent_at": self.clock(),
            "lease_until": None,
            "last_error": "",
            "in_doubt_since": None,
            "sent_by": by[:64],
        }
        if self._fenced(row, status="sent", **done):
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
            # Unless the failure says the call never happened, it may have: keep asking.
            in_doubt_since=row.in_doubt_since if getattr(exc, "in_doubt", True) else None,
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
        if outbox_sql.fenced(row.id, row.lease_until, values):
            return True
        log.warning("outbox lease lost; the row is another worker's", extra={"outbox_id": row.id})
        return False


class CannotTell(Exception):
    """Asking whether a doubtful call went failed; the row stays in doubt."""

    in_doubt = True

    def __init__(self, exc: Exception):
        super().__init__(f"cannot tell whether it went: {type(exc).__name__}: {exc}")
        self.retryable = getattr(exc, "retryable", True)


def _never() -> bool:
    return False


def iso(when: dt.datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") + "Z" if when else None


def _person(row: Outbox) -> str | None:
    """The OpenID a row is addressed to, if any (a WeChat message's `openid`)."""
    return row.payload.get("openid") if isinstance(row.payload, dict) else None


def _shown(row: Outbox) -> str:
    """The row's key as its log lines show it: never a raw OpenID (SECURITY.md)."""
    return logs.key_shown(row.key, _person(row))


def reference(row_id: int) -> str:
    """How an outbox row is named to the outside world (SMS OutId, webhook `key`)."""
    return f"outbox-{row_id}"
