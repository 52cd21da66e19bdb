"""The one way from async code to the database: every job on the path that suits the
database, never blocking the event loop.

Usage::

    db = Runner.for_database(threads=4)             # once, in bot.app.Services
    share = await db.run(shares.by_token, token)    # a read
    reply = await db.write(chat.handle, msg)        # work that writes: durable when it returns
    await db.write_alone(worker.sent, row)          # statements that each stand alone: the same
    db.close()                                      # at shutdown: finishes what was queued

SQLite serialises writers anyway, so writes go to one writer that **group-commits**: the
jobs waiting when it is free run in one transaction, each in a savepoint of its own (one
job's failure undoes only that job), and one durable COMMIT (`synchronous=FULL`) covers
them all; only then are their results handed back. Durability costs one fsync per batch
instead of one per message. The jobs' Python runs on the loop's thread, in a greenlet with
the writer's connection; BEGIN IMMEDIATE (which may wait for another process's lock) and
COMMIT (the fsync) wait in the writer's thread, and the loop serves requests meanwhile, new
writes queueing for the next batch (storage/sqlite.py). Reads run on the loop itself, each
thread with a connection of its own: in WAL mode a reader never waits for the writer.

PostgreSQL takes concurrent writers itself: each job, read or write, runs on the loop's thread
in a greenlet of its own with a connection of its own (storage/loop.py), each write in its own
transaction; where a statement waits for the server (a row lock included), the job waits and
the loop goes on. No thread, so no hand-over and no GIL passed back and forth per statement.

`storage.db.after_commit(fn)` work registered by a job runs after the COMMIT that made the
job durable, and never for a job that failed.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import peewee

from storage import db as storage
from storage.loop import Job, drive
from storage.models import db
from storage.sqlite import WriterState

T = TypeVar("T")
MAX_BATCH = 64  # jobs in one group commit
CLOSE_WAIT_SECONDS = 30  # close() waits this long at most for the jobs on the loop
ATTEMPTS = 3  # a job that raises Retry is run again from its start, this many times in all


class Retry(Exception):
    """Raised by a write job that met a concurrent change (a compare-and-set lost): its work
    is rolled back and the job runs again from the start."""


class Runner:
    def __init__(self, threads: int, group_commit: bool = False):
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="db")
        self._writer = _Writer() if group_commit else None
        self.commits_alone = not group_commit  # write_alone's statements commit as they run
        self._closed = False
        self._on_loop = 0  # jobs under way on the loop (PostgreSQL)
        self._idle = threading.Condition()

    @classmethod
    def for_database(cls, threads: int) -> Runner:
        """The runner that suits the bound database: a group-committing writer for SQLite."""
        return cls(threads, group_commit=not storage.is_postgres())

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """A read: fn(*args) as a job (below). On SQLite, on the loop itself: in WAL mode a
        reader never waits for a writer or a lock, so the hop would only cost time."""
        if self._writer is not None:
            return _fresh(fn, args)
        return await self._job(_fresh, fn, args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in a transaction; returns once that transaction has committed."""
        if self._writer is None:
            return await self._job(_fresh, _in_transaction, (fn, args))
        return await self._writer.write(fn, args)

    async def write_alone(self, fn: Callable[..., T], *args: Any) -> T:
        """`write` for work whose statements each stand alone: on PostgreSQL each commits as
        it runs, with no BEGIN before it or COMMIT after it to wait for (a round trip, not
        two, for one statement); on SQLite its writer runs it as any write."""
        if self._writer is None:
            return await self._job(_fresh, fn, args)
        return await self._writer.write(fn, args)

    async def _job(self, fn: Callable[..., T], *args: Any) -> T:
        """PostgreSQL: a greenlet on the loop with a connection of its own (storage/loop.py);
        another database: a thread of the pool."""
        if self._closed:
            raise RuntimeError("the database runner is closed")
        on_loop = getattr(db.obj, "run_job", None)
        if on_loop is None:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        with self._idle:
            self._on_loop += 1
        try:
            return await on_loop(fn, *args)
        finally:
            with self._idle:
                self._on_loop -= 1
                if not self._on_loop:
                    self._idle.notify_all()

    def close(self) -> None:
        """Refuse new jobs, finish those under way, let go of the connections. Jobs on the loop
        are waited for from another thread; on the loop's own thread (a server's shutdown, its
        requests drained first) they could not advance while close() waited, so it does not."""
        self._closed = True
        if self._writer is not None:
            self._writer.stop()
        self._pool.shutdown(wait=True)
        if _running_loop() is None:
            with self._idle:
                self._idle.wait_for(lambda: not self._on_loop, timeout=CLOSE_WAIT_SECONDS)
        close_idle = getattr(db.obj, "close_loop_connections", None)
        if close_idle is not None:
            close_idle()


class _Writer:
    """One connection, every write: the jobs waiting when it is free run on the loop in one
    transaction, and share its COMMIT; BEGIN and COMMIT wait in a thread (storage/sqlite.py)."""

    def __init__(self):
        self._jobs: collections.deque = collections.deque()
        self._lock = threading.Lock()  # jobs may come from the loops of several threads
        self._drainer: asyncio.Task | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        self._disk = ThreadPoolExecutor(1, thread_name_prefix="db-writer")
        self._state: WriterState | None = None
        self._database = None
        self._abandoned: list[asyncio.Task] = []

    async def write(self, fn: Callable[..., T], args: tuple) -> T:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the database runner is closed")
            self._jobs.append((fn, args, future))
            if self._drainer is not None and self._drainer.get_loop().is_closed():
                self._abandon()
            if self._drainer is None:
                self._idle.clear()
                self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Batch after batch on this loop, until none is waiting."""
        try:
            while True:
                with self._lock:
                    batch = [self._jobs.popleft() for _ in range(min(MAX_BATCH, len(self._jobs)))]
                    if not batch:
                        self._drainer = None
                        self._idle.set()
                        return
                await drive(Job(self._commit, *self._connection()), batch)
        except BaseException:
            with self._lock:
                if self._drainer is asyncio.current_task():  # not one abandoned since
                    self._drainer = None
                    self._idle.set()
            raise

    def _abandon(self) -> None:
        """The drainer's loop was closed with its batch unfinished (asyncio.run would have run it
        to its end): that batch's connection is closed in its thread once the thread is done
        with it, which rolls its transaction back and lets go of the lock. The next batches
        get a connection and a thread of their own: the old thread may still be waiting for
        the lock they are about to take."""
        if self._state is not None and self._state.conn is not None:
            self._disk.submit(self._state.conn.close)
        self._disk.shutdown(wait=False)
        self._disk = ThreadPoolExecutor(1, thread_name_prefix="db-writer")
        # Kept, never resumed nor finalized: collected, the task and its batch's greenlet would
        # run their clean-up at whatever moment and thread the collector chose.
        self._abandoned.append(self._drainer)
        self._database = self._state = self._drainer = None

    def _connection(self) -> tuple[peewee.Database, WriterState]:
        if self._database is not db.obj:  # bound anew (tests): a connection of the new one
            self._database, self._state = db.obj, WriterState(self._disk)
        return self._database, self._state

    def _commit(self, batch: list) -> None:
        outcomes = []
        try:
            with storage.write_transaction():
                for fn, args, future in batch:
                    result, error = _attempts(fn, args)
                    outcomes.append((future, result, error))
        except Exception as exc:  # BEGIN or COMMIT itself failed: nothing was kept
            db.close()
            outcomes = [(future, None, exc) for _, _, future in batch]
        _hand_back(outcomes)

    def stop(self) -> None:
        """Refuse new jobs; wait for those queued (unless called on the loop that runs them,
        which cannot run them while this waits); fail what is left; close the connection."""
        with self._lock:
            self._closed = True
            drainer = self._drainer
        if drainer is None or drainer.get_loop() is not _running_loop():
            self._idle.wait(CLOSE_WAIT_SECONDS)
        self._disk.shutdown(wait=True)
        with self._lock:
            left = [
                (future, None, RuntimeError("the database runner closed"))
                for *_, future in self._jobs
            ]
            self._jobs.clear()
        _hand_back(left)
        if self._idle.is_set() and self._state is not None and not self._state.closed:
            self._state.conn.close()
            self._state.reset()


def _hand_back(outcomes: list) -> None:
    """Each job's result or error to its waiter, on the waiter's loop: at once on this one,
    with one wake-up for each other."""
    here = _running_loop()
    loops: dict[asyncio.AbstractEventLoop, list] = {}
    for outcome in outcomes:
        loops.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, settled in loops.items():
        if loop is here:
            _settle(settled)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(_settle, settled)


def _settle(outcomes: list) -> None:
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def _attempts(fn: Callable, args: tuple) -> tuple[Any, Exception | None]:
    """Run one job in a savepoint of the writer's transaction: a failed job undoes only
    itself, and one that raised Retry runs again."""
    for attempt in range(1, ATTEMPTS + 1):
        mark = storage.after_commit_mark()
        # Plain SQL savepoints: the job's own nested atomic() blocks nest inside this one.
        db.execute_sql("SAVEPOINT job")
        try:
            result = fn(*args)
        except Exception as exc:
            db.execute_sql("ROLLBACK TO SAVEPOINT job")
            db.execute_sql("RELEASE SAVEPOINT job")
            storage.after_commit_drop(mark)
            if isinstance(exc, Retry) and attempt < ATTEMPTS:
                continue
            return None, exc
        db.execute_sql("RELEASE SAVEPOINT job")
        return result, None
    raise AssertionError("unreachable")


def _in_transaction(fn: Callable[..., T], args: tuple) -> T:
    """A job in a transaction of its own (PostgreSQL), run again when it raises Retry."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with storage.write_transaction():
                return fn(*args)
        except Retry:
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _fresh(fn: Callable[..., T], args: tuple) -> T:
    """fn(*args); a connection the database broke is closed, so the next call opens anew."""
    try:
        return fn(*args)
    except (peewee.OperationalError, peewee.InterfaceError):
        db.close()
        raise
