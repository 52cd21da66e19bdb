"""What each send came to (sent, failed, in doubt), written with the outbox worker's next
write instead of a transaction of its own.

Usage (bot/outgoing/outbox.py)::

    records = Records(runner)
    rows = await records.write(worker.claim)  # the worker's write, after the records waiting
    records.later(worker.sent, row, "chat")   # after a send: goes with the next write
    await records.flush()                     # before a call nobody could ask about later

Before each send the worker writes anyway — the lease, its renewal, the in-doubt mark — or,
when it would not, it flushes, as does a lane that ends while others still send: so no
record waits behind another send, and a worker killed mid-send leaves unrecorded only the
rows its lanes had in flight (bot/outgoing/outbox_lanes.py, LANES). Each of these writes, and each
record, is one statement. On SQLite they go in one transaction (its writer's COMMIT is a
wait for the disk); on PostgreSQL each commits as it runs (Runner.write_alone): a round trip
each, where BEGIN and COMMIT around them added one more (issue 27).
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
        """fn(*args), one statement, with the next write, before what that write does."""
        self._waiting.append((fn, args))

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args), one statement, after the waiting records. A record is kept until it has
        committed: a write that fails leaves it for the next."""
        if self.db.commits_alone:
            return await self.db.write_alone(self._each_then, fn, args)
        waiting, self._waiting = self._waiting, []
        try:
            return await self.db.write(_after, waiting, fn, args)
        except BaseException:
            self._waiting = waiting + self._waiting
            raise

    async def flush(self) -> None:
        """Write the records still waiting, if any."""
        if self._waiting:
            await self.write(_nothing)

    def _each_then(self, fn: Callable[..., T], args: tuple) -> T:
        """Each record, then fn: every statement committed as it runs. A record is taken
        before it runs, so another lane's write, running while this one waits for its
        answer, goes on with the next; one that fails is put back."""
        while self._waiting:
            record, record_args = waiting = self._waiting.pop(0)
            try:
                record(*record_args)
            except BaseException:
                self._waiting.insert(0, waiting)
                raise
        return fn(*args)


def _after(records: list[Record], fn: Callable[..., T], args: tuple) -> T:
    for record, record_args in records:
        record(*record_args)
    return fn(*args)


def _nothing() -> None:
    pass
