"""The asynchronous psycopg2 connection a job on the event loop (storage/loop.py) holds: a
statement sent, the job parks until the server's answer is readable, and the loop's callback
for the socket runs it on; the prebuilt statements (storage/prebuilt.py) it has prepared; and
the parameters of an EXECUTE written as psycopg2 writes them.

Usage (storage/loop_pool.py opens them, storage/pipeline.py sends on them)::

    conn = LoopConnection(psycopg2.connect(dsn, async_=1))   # once its connect has finished
    conn.cursor().execute(text)          # in a job: returns with the answer, the loop going on
    text = conn.named("open_message", sql, params)   # PREPARE the first time, then EXECUTE
"""

from __future__ import annotations

import asyncio
import codecs
import datetime as dt
import functools
import re
from typing import Any

from greenlet import getcurrent

from storage.loop import PARKED, Job, await_, resume
from storage.models.base import Encoded

try:
    import psycopg2
    import psycopg2.extensions as pg
except ImportError:  # SQLite only: nothing here is used
    psycopg2 = pg = None

C_UTF8 = "utf_8_in_c"


def _utf8_in_c(name: str) -> codecs.CodecInfo | None:
    """UTF-8 as a codec whose functions are the C ones themselves. psycopg2 decodes what the
    server names — each column of every answer, its status (\"SELECT 1\"), errors, notices —
    through the Python codec of the connection's encoding, a Python function calling the C one
    for each name (~0.3 µs; an opening statement has 39 columns, issue 27). Values have their
    own C decoder and are not touched. The one difference: a name ending in half a character
    would lose that half instead of showing U+FFFD; the server sends none (it checks UTF-8)."""
    if name != C_UTF8:
        return None
    return codecs.CodecInfo(codecs.utf_8_encode, codecs.utf_8_decode, name=C_UTF8)


if pg is not None:  # read by psycopg2 as each connection starts
    codecs.register(_utf8_in_c)
    pg.encodings["UTF8"] = pg.encodings["UNICODE"] = C_UTF8


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
        "raw", "idle_since", "prepared", "unsure", "stale", "plain", "named_cursor", "_loop", "_fd",
        "_job", "_busy",
    )  # fmt: skip

    def __init__(self, raw):
        self.raw, self.idle_since = raw, 0.0
        self.prepared: set[str] = set()
        self.unsure = False  # a PREPARE is on its way: not known to have run yet
        self.stale = False  # what the server holds is unknown: DEALLOCATE ALL before the next
        self.plain = plain_text(raw)  # any text is written as quoted UTF-8 (_literal)
        self.named_cursor: Any = None  # what prebuilt statements run on (storage/pipeline.py)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop watching its socket
        self._fd = raw.fileno()  # kept: a connection that broke has none to ask for
        self._job: Job | None = None  # parked until the socket is readable
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
                try:
                    if state == pg.POLL_WRITE:
                        await_(io_ready(self._fd, write=True))
                    else:
                        self._park()
                except BaseException:  # the job cancelled while its statement is out
                    self.abandon()
                    raise
        finally:
            self._busy = False

    def abandon(self) -> None:
        """Close the connection under a statement still out: nothing else can be sent on it,
        and the server, finding it closed, ends the statement and undoes its transaction."""
        self.unwatch()  # first: the closed socket's descriptor may be reused at once
        self.raw.close()

    def _park(self) -> None:
        """Until the socket is readable: the job hands the loop PARKED, and the loop's callback
        for the socket switches straight back into it (no future, no task woken: issue 27)."""
        job = getcurrent()
        if not isinstance(job, Job):
            raise RuntimeError("a statement waited for outside a database job on the loop")
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self.unwatch()
            loop.add_reader(self._fd, self._on_readable)
            self._loop = loop
        self._job, job.parked_on = job, self
        try:
            job.parent.switch(PARKED)
        finally:
            self.unpark()

    def unpark(self) -> None:
        if self._job is not None:
            self._job.parked_on = None
            self._job = None

    def _on_readable(self) -> None:
        job = self._job
        if job is not None:
            self.unpark()
            resume(job)
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
        raw, plain = self.raw, self.plain
        values = b", ".join([_literal(value, raw, plain) for value in params])
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


def plain_text(connection) -> bool:
    """Whether psycopg2 writes any text for `connection` as its UTF-8 in quotes, each quote
    doubled: the client encoding is UTF-8 and backslashes are plain characters
    (standard_conforming_strings, on by default since PostgreSQL 9.1)."""
    return (
        connection.encoding == "UTF8"
        and connection.get_parameter_status("standard_conforming_strings") == "on"
    )


_stamps: dict[dt.datetime, bytes] = {}  # timestamps written lately: a message repeats its now


def _literal(value: Any, connection, plain: bool) -> bytes:
    """`value` as psycopg2's `mogrify` writes it, byte for byte (tests/test_loop_jobs.py holds
    them equal), in a fraction of its time (issue 27; psycopg2 spends ~1–2 µs a parameter):
    the plain cases written directly — text (any, when `plain_text(connection)`; else ASCII
    with no quote, backslash or NUL), whole numbers, booleans, NULL, naive timestamps and
    dates — and everything else through psycopg2's own adapters, as `mogrify` would (text
    with a NUL among them, which they refuse)."""
    kind = type(value)
    if kind is str or kind is Encoded:  # Encoded: a JSON column's text, written already
        if plain:
            if "\x00" not in value:  # a lone surrogate raises here, as in psycopg2
                return b"'%s'" % value.encode().replace(b"'", b"''")
        elif value.isascii() and "'" not in value and "\\" not in value and "\x00" not in value:
            return b"'%s'" % value.encode("ascii")
    elif kind is int:
        return b"%d" % value if value >= 0 else b" %d" % value  # " -1": never "--", a comment
    elif value is None:
        return b"NULL"
    elif kind is bool:
        return b"true" if value else b"false"
    elif kind is dt.datetime and value.tzinfo is None:
        written = _stamps.get(value)
        if written is None:
            if len(_stamps) >= 64:
                _stamps.clear()
            written = _stamps[value] = b"'%s'::timestamp" % value.isoformat().encode("ascii")
        return written
    elif kind is dt.date:
        return b"'%s'::date" % value.isoformat().encode("ascii")
    adapted = pg.adapt(value)
    if hasattr(adapted, "prepare"):
        adapted.prepare(connection)
    return adapted.getquoted()
