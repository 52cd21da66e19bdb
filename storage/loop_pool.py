"""The connections of the jobs on the event loop (storage/loop.py): asynchronous psycopg2
connections, opened when a job needs one and none is free, at most `size`; a job waits for one
otherwise. One idle for STALE_SECONDS is closed rather than reused.

Usage (storage/pipeline.py)::

    pool = LoopPool(params, size=8, on_open=set_up)
    conn = await pool.acquire()         # a LoopConnection, lent to one job
    pool.release(conn, broken=False)    # back; broken, or not idle: closed instead
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

from storage.loop_connection import LoopConnection, io_ready, pg, psycopg2

STALE_SECONDS = 300  # an idle connection older than this is closed, not reused


class LoopPool:
    """At most `size` asynchronous connections, opened when needed, each lent to one job.
    Jobs that find none free wait in turn: a connection given back goes straight to the
    longest waiting (a newcomer never takes it first, so no wait grows without end)."""

    def __init__(self, params: dict, size: int, on_open: Callable[[Any], None]):
        self.params, self.size, self._on_open = params, size, on_open
        self._idle: list[LoopConnection] = []
        self._open = 0
        # Each waiter's future: done with a connection lent to it, or None when it may open one.
        self._waiting: collections.deque[asyncio.Future] = collections.deque()

    async def acquire(self) -> LoopConnection:
        if not self._waiting:  # nobody before this job: an idle one, or a new one if there is room
            while self._idle:
                conn = self._idle.pop()
                if not conn.raw.closed and time.monotonic() - conn.idle_since < STALE_SECONDS:
                    return conn
                self._discard(conn)
            if self._open < self.size:
                return await self._open_one(reserved=False)
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            lent = await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # what it was given goes to the next
                if turn.result() is not None:
                    self.release(turn.result())
                else:
                    self._open -= 1  # the room kept for it
                    self._next()
            raise
        return lent if lent is not None else await self._open_one(reserved=True)

    def release(self, conn: LoopConnection, broken: bool = False) -> None:
        """Back to the pool; `broken` (or not idle between transactions): closed instead."""
        if (
            broken
            or conn.raw.closed
            or conn.raw.get_transaction_status() != pg.TRANSACTION_STATUS_IDLE
        ):
            self._discard(conn)
            self._next()
            return
        conn.idle_since = time.monotonic()
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(conn)
                return
        self._idle.append(conn)

    def close_idle(self) -> None:
        while self._idle:
            self._discard(self._idle.pop())

    def _discard(self, conn: LoopConnection) -> None:
        self._open -= 1
        conn.unwatch()
        if not conn.raw.closed:
            conn.raw.close()

    def _next(self) -> None:
        """A connection was closed: the longest waiter may open one in its place."""
        while self._waiting and self._open < self.size:
            turn = self._waiting.popleft()
            if not turn.done():
                self._open += 1  # the room is kept for it (`_open_one(reserved=True)`)
                turn.set_result(None)
                return

    async def _open_one(self, reserved: bool) -> LoopConnection:
        if not reserved:
            self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._next()
            raise

    async def _connect(self) -> LoopConnection:
        raw = psycopg2.connect(async_=1, **self.params)
        try:
            while (state := raw.poll()) != pg.POLL_OK:
                await io_ready(raw.fileno(), state == pg.POLL_WRITE)
        except BaseException:
            raw.close()
            raise
        self._on_open(raw)
        return LoopConnection(raw)
