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
and return, the job's greenlet parks until the socket is readable, and the loop serves other
requests meanwhile; the loop's callback for the socket then switches straight back into the
job (`resume`), with no future set and no task stepped for each statement (issue 27: a third
of a two-statement job's CPU). A job holds one connection of the loop's pool from its start
to its end (its transaction); at most `size` jobs run at once, the others wait for a free one.

Each job has its own peewee connection state (storage/pipeline.py reads `Job.db_state`), so
jobs interleave on one thread without sharing a transaction. The connections are
storage/loop_connection.py, their pool storage/loop_pool.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from greenlet import getcurrent, greenlet


class Parking(Protocol):
    """What a job parks on (storage/loop_connection.py's LoopConnection)."""

    def unpark(self) -> None: ...


class Job(greenlet):
    """A database job running on the loop: its greenlet, the database and the connection
    state it uses."""

    def __init__(self, fn: Callable, database, state):
        super().__init__(fn, parent=getcurrent())
        self.database, self.db_state = database, state
        self.parked_on: Parking | None = None  # waiting for this connection's answer
        self.handover: asyncio.Future | None = None  # drive's, while the job is parked


class _Parked:
    """What a job hands `drive` when it parks: nothing to await, the loop resumes it."""

    def __repr__(self) -> str:
        return "PARKED"


PARKED = _Parked()


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
    """Run `job` to its end, awaiting on its behalf whatever it hands over. A job waiting for
    its server's answer parks instead (LoopConnection.wait): the loop's callback for the
    socket runs it on (`resume`), and drive hears of what it hands over after that."""
    value = job.switch(*args)
    while not job.dead:
        if value is PARKED:
            value = await _handed_over(job)
            continue
        try:
            result = await value
        except BaseException as exc:  # the job decides (a rollback, a failed statement)
            value = job.throw(exc)
        else:
            value = job.switch(result)
    return value


async def _handed_over(job: Job) -> Any:
    """What the parked `job` hands over next (or returns), once `resume` has run it on; what
    it raised is raised here. Cancelled meanwhile, the job is cancelled where it waits."""
    handover = job.handover = asyncio.get_running_loop().create_future()
    try:
        value, error = await handover
    except asyncio.CancelledError as exc:
        if not handover.done() or handover.cancelled():  # still parked
            job.parked_on.unpark()
            return job.throw(exc)
        value, error = handover.result()
        if error is None and not job.dead:  # it moved on to await `value`: cancel that instead
            if asyncio.iscoroutine(value):
                value.close()  # never to be awaited
            return job.throw(exc)
    if error is not None:
        raise error
    return value


def resume(job: Job) -> None:
    """From a loop callback: run the parked `job` on until it parks again, hands `drive`
    something to await, or ends (what it returned or raised goes to `drive`)."""
    try:
        value, error = job.switch(), None
    except BaseException as exc:  # noqa: BLE001 -- drive raises it, where the job was awaited
        value, error = None, exc
    if value is not PARKED and job.handover is not None and not job.handover.done():
        job.handover.set_result((value, error))


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
