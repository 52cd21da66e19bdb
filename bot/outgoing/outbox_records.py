"""What each send came to (sent, failed, in doubt), written with the outbox worker's next
transaction instead of one of its own.

Usage (bot/outgoing/outbox.py)::

    records = Records(runner)
    rows = await records.write(worker.claim)  # a write, after the records waiting
    records.later(worker.sent, row, "chat")   # after a send: goes with the next write
    await records.flush()                     # before a call nobody could ask about later

Before each send the worker writes anyway — the lease, its renewal, the in-doubt mark — or,
when it would not, it flushes: so no record waits behind another send, and a worker killed
mid-send leaves at most that one row unrecorded, as before. Issue 27 measured a send's own
transactions as most of its cost when nothing else is written: an SMS the vendor can be
asked about now takes one (its in-doubt mark, with the record before it) instead of two; a
record flushed alone is one statement, which on PostgreSQL commits as it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from storage.runner import Runner

T = TypeVar("T")
Record = tuple[Callable[..., object], tuple]


class Records:
    def __init__(self, db: Runner):
        self.db = db
        self._waiting: list[Record] = []

    def later(self, fn: Callable[..., object], *args: Any) -> None:
        """fn(*args), in the next write's transaction, before what that write does."""
        self._waiting.append((fn, args))

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in a write transaction, after the waiting records. They are kept until
        a transaction with them has committed: a write that fails leaves them for the next."""
        return await self._write(self.db.write, fn, args)

    async def flush(self) -> None:
        """Write the records still waiting, if any. One alone (what a flush before a send
        finds) is one statement, committed as it runs (Runner.write_alone)."""
        if len(self._waiting) == 1:
            await self._write(self.db.write_alone, _nothing, ())
        elif self._waiting:
            await self.write(_nothing)

    async def _write(self, write, fn: Callable[..., T], args: tuple) -> T:
        waiting, self._waiting = self._waiting, []
        try:
            return await write(_after, waiting, fn, args)
        except BaseException:
            self._waiting = waiting + self._waiting
            raise


def _after(records: list[Record], fn: Callable[..., T], args: tuple) -> T:
    for record, record_args in records:
        record(*record_args)
    return fn(*args)


def _nothing() -> None:
    pass
