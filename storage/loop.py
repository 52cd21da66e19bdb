"""PostgreSQL jobs on the event loop: each job's synchronous peewee code runs in a greenlet of
its own, and where it would wait for the server it hands the wait to the loop instead.

Usage (storage.runner does this for a PostgreSQL database; the code of a job is unchanged)::

    value = await database.run_job(fn, *args)   # fn(*args) on the loop, with a connection
    local = Local()                             # like threading.local, but per job too
    local.seen = 1

Why: a job on a pool thread costs the hand-over to the thread and back, and the GIL passed
between the loop and the thread at every statement; under load a thread that got its answer
waits for the loop to let go of the GIL, and the loop's thread loses it in the middle of its
work (issue 27's profile: on PostgreSQL the loop's own CPU per message was twice SQLite's).
Here nothing leaves the loop's thread: psycopg2's asynchronous connections send a statement
and return, the job's greenlet yields to the loop until the socket is readable, and the loop
serves other requests meanwhile. A job holds one connection of the loop's pool from its start
to its end (its transaction); at most `size` jobs run at once, the others wait for a free one.

Each job has its own peewee connection state (storage/pipeline.py reads `Job.db_state`), so
jobs interleave on one thread without sharing a transaction. The connections' pool is
storage/loop_pool.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
from collections.abc import Callable
from typing import Any

from greenlet import getcurrent, greenlet

try:
    import psycopg2
    import psycopg2.extensions as pg
except ImportError:  # SQLite only: nothing here is used
    psycopg2 = pg = None


class Job(greenlet):
    """A database job running on the loop: its greenlet, the database and the connection
    state it uses."""

    def __init__(self, fn: Callable, database, state):
        super().__init__(fn, parent=getcurrent())
        self.database, self.db_state = database, state


class JobStates:
    """For a peewee database: a job's own connection state while a job of this database runs
    (`Job.db_state`), else the thread's (peewee's thread-local one)."""

    @property
    def _state(self):
        task = getcurrent()
        if type(task) is Job and task.database is self:
            return task.db_state
        return self._thread_state

    @_state.setter
    def _state(self, state) -> None:  # peewee's __init__ sets its thread-local one here
        self._thread_state = state


def await_(awaitable) -> Any:
    """From a job's synchronous code: wait for `awaitable` on the loop and return its result."""
    job = getcurrent()
    if not isinstance(job, Job):
        raise RuntimeError("await_() outside a database job on the loop")
    return job.parent.switch(awaitable)


async def drive(job: Job, *args) -> Any:
    """Run `job` to its end, awaiting on its behalf whatever it hands over."""
    value = job.switch(*args)
    while not job.dead:
        try:
            result = await value
        except BaseException as exc:  # the job decides (a rollback, a failed statement)
            value = job.throw(exc)
        else:
            value = job.switch(result)
    return value


class Local:
    """Like `threading.local`, for tasks: each thread and each job on the loop sees its own
    attributes."""

    __slots__ = ("_key",)

    def __init__(self):
        object.__setattr__(self, "_key", f"local-{id(self)}")

    def vars(self) -> dict:
        own = getcurrent().__dict__
        found = own.get(self._key)
        if found is None:
            found = own[self._key] = {}
        return found

    def __getattr__(self, name: str) -> Any:
        try:
            return self.vars()[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self.vars()[name] = value


# -- the connections -------------------------------------------------------------------------


def io_ready(fd: int, write: bool = False) -> asyncio.Future:
    """A future done once `fd` can be read (or written)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    if write:
        loop.add_writer(fd, _wake, future)
        future.add_done_callback(lambda _: loop.remove_writer(fd))
    else:
        loop.add_reader(fd, _wake, future)
        future.add_done_callback(lambda _: loop.remove_reader(fd))
    return future


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class LoopCursor:
    """A psycopg2 cursor whose `execute` waits on the loop; everything else is the cursor's."""

    __slots__ = ("_cursor", "_conn")

    def __init__(self, cursor, conn: LoopConnection):
        self._cursor, self._conn = cursor, conn

    def execute(self, sql, params=None) -> None:
        self._cursor.execute(sql, params)
        self._conn.wait()

    def __iter__(self):
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class LoopConnection:
    """An asynchronous psycopg2 connection, as peewee uses a connection, and the prebuilt
    statements (storage/prebuilt.py) it has prepared on the server: PostgreSQL parses and plans
    those once per connection instead of at every message (half the server's CPU for a
    message's opening statement, issue 27)."""

    __slots__ = (
        "raw", "idle_since", "prepared", "unsure", "stale", "_loop", "_fd", "_waiter", "_busy",
    )  # fmt: skip

    def __init__(self, raw):
        self.raw, self.idle_since = raw, 0.0
        self.prepared: set[str] = set()
        self.unsure = False  # a PREPARE is on its way: not known to have run yet
        self.stale = False  # what the server holds is unknown: DEALLOCATE ALL before the next
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop watching its socket
        self._fd = raw.fileno()  # kept: a connection that broke has none to ask for
        self._waiter: asyncio.Future | None = None
        self._busy = False  # a statement is out: its answer is the job's to read

    def cursor(self) -> LoopCursor:
        return LoopCursor(self.raw.cursor(), self)

    def wait(self) -> None:
        """In a job: until the statement sent has its answer (its error raised here). The
        socket stays watched by the loop for the connection's life (one registration, not two
        system calls a statement)."""
        self._busy = True
        try:
            while (state := self.raw.poll()) != pg.POLL_OK:
                if state == pg.POLL_WRITE:
                    await_(io_ready(self._fd, write=True))
                else:
                    await_(self._readable_soon())
        finally:
            self._busy = False

    def _readable_soon(self) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self.unwatch()
            loop.add_reader(self._fd, self._on_readable)
            self._loop = loop
        self._waiter = loop.create_future()
        return self._waiter

    def _on_readable(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        elif not self._busy:  # between statements: a notice, or the server hung up
            try:
                self.raw.poll()
            except psycopg2.Error:
                self.unwatch()

    def unwatch(self) -> None:
        """Stop watching the socket (before its descriptor is reused: a closed one was already
        dropped by epoll, and the loop's selector forgets it quietly)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        self._loop = None

    def named(self, name: str, sql: str, params) -> bytes:
        """The text that runs the prebuilt statement `name` (`sql`, %s placeholders) with
        `params`: EXECUTE, preceded the first time by its PREPARE. Call `sent` once the text
        ran, `lost` if it failed or was never sent."""
        parts = []
        if self.stale:
            parts.append(b"DEALLOCATE ALL")
            self.prepared.clear()
            self.stale, self.unsure = False, True
        if name not in self.prepared:
            parts.append(_prepare_text(name, sql))
            self.prepared.add(name)
            self.unsure = True
        values = b", ".join([_literal(value, self.raw) for value in params])
        parts.append(
            b"EXECUTE %s(%s)" % (_ascii(name), values) if params else b"EXECUTE " + _ascii(name)
        )
        return b"; ".join(parts)

    def sent(self) -> None:
        self.unsure = False

    def lost(self) -> None:
        """A text failed, or kept-back statements were dropped: a PREPARE among them may or
        may not have run (a PREPARE outlives its transaction), so start afresh."""
        if self.unsure:
            self.prepared.clear()
            self.stale, self.unsure = True, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


@functools.cache
def _prepare_text(name: str, sql: str) -> bytes:
    numbered = iter(range(1, sql.count("%s") + 1))
    body = re.sub(r"%%|%s", lambda m: "%" if m[0] == "%%" else f"${next(numbered)}", sql)
    return f"PREPARE {name} AS {body}".encode()


@functools.cache
def _ascii(name: str) -> bytes:
    return name.encode("ascii")


def _literal(value: Any, connection) -> bytes:
    """`value` as psycopg2's `mogrify` writes it, byte for byte (tests/test_loop_jobs.py holds
    them equal), in a third of its time (issue 27: 15 → 5 µs for a message's opening
    statement, psycopg2 spending ~1–2 µs a parameter): the plain cases written directly —
    text that needs no escaping (ASCII, no quote, no backslash, no NUL), whole numbers,
    booleans, NULL, naive timestamps — and everything else through psycopg2's own adapters,
    as `mogrify` would (text with a quote or beyond ASCII among them)."""
    kind = type(value)
    if kind is str:
        if value.isascii() and "'" not in value and "\\" not in value and "\x00" not in value:
            return b"'%s'" % value.encode("ascii")
    elif kind is int:
        return b"%d" % value if value >= 0 else b" %d" % value  # " -1": never "--", a comment
    elif value is None:
        return b"NULL"
    elif kind is bool:
        return b"true" if value else b"false"
    elif kind is dt.datetime and value.tzinfo is None:
        return b"'%s'::timestamp" % value.isoformat().encode("ascii")
    adapted = pg.adapt(value)
    if hasattr(adapted, "prepare"):
        adapted.prepare(connection)
    return adapted.getquoted()
