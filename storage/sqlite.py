"""SQLite for a writer on the event loop: its jobs' Python runs on the loop's thread, and the two
statements that wait — BEGIN IMMEDIATE when another process holds the write lock, COMMIT on
the disk's fsync — wait in a thread while the loop goes on.

Usage (storage.db.connect binds it for a `sqlite:///` url; storage.runner's writer uses it)::

    database = LoopSqliteDatabase(path, pragmas=…, timeout=10)
    state = WriterState(ThreadPoolExecutor(1))     # the writer's connection
    await drive(Job(work, database, state))        # work's BEGIN and COMMIT wait off the loop

Why: the writer was a thread of its own, and under load it and the loop's thread passed the
GIL back and forth at every statement and every socket call. Side by side (issue 27, four
rounds of each, alternating), the process's CPU per message of the claim scenario was
870–1 180 µs with the writer on its thread and 820–870 with its jobs on the loop; per form
step 630–890 against 615–660. The price: a write job's own statements now hold the loop
while they run, as a PostgreSQL job's Python does, so no job may be long (the sweep prunes
push records 2 000 rows a job). Outside a writer's job (reads on the loop, the command line,
tests' threads) this is peewee's SqliteDatabase: each thread its own connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import peewee

from storage.loop import JobStates, await_

_wrapped = peewee.__exception_wrapper__  # sqlite3's errors as peewee's


class WriterState(peewee._ConnectionState):
    """A writer's connection state: one connection, used by one job at a time, whose BEGIN and
    COMMIT run on `disk` (one thread)."""

    def __init__(self, disk: Executor):
        super().__init__()
        self.disk = disk


class LoopSqliteDatabase(JobStates, peewee.SqliteDatabase):
    def __init__(self, *args, **kwargs):
        # The writer's connection is opened on the loop and waited on in its thread: never by
        # two threads at once (the job is suspended while the thread runs).
        kwargs.setdefault("check_same_thread", False)
        super().__init__(*args, **kwargs)

    def _connect(self):
        conn = super()._connect()
        if isinstance(self._state, WriterState):  # the writer's: never waits on the loop
            conn.execute("PRAGMA busy_timeout = 0")
        return conn

    def begin(self, lock_type: str | None = None) -> None:
        """A writer's BEGIN runs on the loop when the lock is free (nearly always: one process),
        and waits for it in the thread when another process holds it."""
        state = self._state
        if not isinstance(state, WriterState):
            return super().begin(lock_type)
        conn = self.connection()
        lock_type = lock_type or self._lock_type  # as peewee's own begin()
        statement = f"BEGIN {lock_type}" if lock_type else "BEGIN"
        with _wrapped:
            try:
                conn.execute(statement)
            except sqlite3.OperationalError as refused:
                if refused.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                _off_loop(state.disk, _patiently, conn, statement, self._timeout)

    def commit(self) -> None:
        state = self._state
        if not isinstance(state, WriterState):
            return super().commit()
        if self.is_closed():
            raise peewee.InterfaceError("Cannot commit, database connection not open.")
        conn = self.connection()
        with _wrapped:
            _off_loop(state.disk, conn.execute, "COMMIT")


def _patiently(conn: sqlite3.Connection, statement: str, timeout: float) -> None:
    """`statement`, waiting up to `timeout` seconds for another connection's lock."""
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    try:
        conn.execute(statement)
    finally:
        conn.execute("PRAGMA busy_timeout = 0")


def _off_loop(disk: Executor, fn: Callable[..., Any], *args) -> Any:
    """From a job on the loop: fn(*args) on `disk`'s thread, the loop going on meanwhile. A wait
    cancelled (its loop shutting down) is waited out here instead: the connection is never
    used by two threads at once, and a COMMIT that happened is never reported as not done."""
    done = disk.submit(fn, *args)
    try:
        return await_(asyncio.shield(asyncio.wrap_future(done)))
    except asyncio.CancelledError:
        return done.result()
