"""The one way from async code to the database: a bounded pool of threads, each with its
own connection, so no query ever waits on a lock on the event loop.

Usage::

    db = Runner(threads=4)                          # once, in bot.app.Services
    share = await db.run(shares.by_token, token)    # handlers, pages, the background work
    db.close()                                      # at shutdown: waits for running work

peewee keeps one connection per thread, so a pool of N threads holds at most N
connections; the pool's queue is where requests wait when the database is busy, instead
of the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import peewee

from storage.models import db

T = TypeVar("T")


class Runner:
    def __init__(self, threads: int):
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="db")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Call fn(*args) on a database thread and wait for it without blocking the loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, _fresh, fn, args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _fresh(fn: Callable[..., T], args: tuple) -> T:
    """fn(*args); a connection the database broke is closed, so the next call opens anew."""
    try:
        return fn(*args)
    except (peewee.OperationalError, peewee.InterfaceError):
        db.close()
        raise
