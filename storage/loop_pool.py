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

from storage.loop import LoopConnection, _ready, pg, psycopg2

STALE_SECONDS = 300  # an idle connection older than this is closed, not reused


class LoopPool:
    """At most `size` asynchronous connections, opened when needed, each lent to one job."""

    def __init__(self, params: dict, size: int, on_open: Callable[[Any], None]):
        self.params, self.size, self._on_open = params, size, on_open
        self._idle: list[LoopConnection] = []
        self._open = 0
        self._waiting: collections.deque[asyncio.Future] = collections.deque()

    async def acquire(self) -> LoopConnection:
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.raw.closed and time.monotonic() - conn.idle_since < STALE_SECONDS:
                    return conn
                self._discard(conn)
            if self._open < self.size:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    raise
            turn = asyncio.get_running_loop().create_future()
            self._waiting.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._next()  # a turn given to a waiter that left goes to the next one
                raise

    def release(self, conn: LoopConnection, broken: bool = False) -> None:
        """Back to the pool; `broken` (or not idle between transactions): closed instead."""
        if (
            broken
            or conn.raw.closed
            or conn.raw.get_transaction_status() != pg.TRANSACTION_STATUS_IDLE
        ):
            self._discard(conn)
        else:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        self._next()

    def close_idle(self) -> None:
        while self._idle:
            self._discard(self._idle.pop())

    def _discard(self, conn: LoopConnection) -> None:
        self._open -= 1
        conn.unwatch()
        if not conn.raw.closed:
            conn.raw.close()

    def _next(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    async def _connect(self) -> LoopConnection:
        raw = psycopg2.connect(async_=1, **self.params)
        try:
            while (state := raw.poll()) != pg.POLL_OK:
                await _ready(raw.fileno(), state == pg.POLL_WRITE)
        except BaseException:
            raw.close()
            raise
        self._on_open(raw)
        return LoopConnection(raw)
