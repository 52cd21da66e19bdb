"""PostgreSQL with fewer round trips: BEGIN, SAVEPOINT, RELEASE and writes whose answer nobody
reads travel with the next statement that needs an answer, or with the COMMIT.

Usage (what storage.db.connect binds for a `postgresql://` url)::

    database = PipelinedPostgresqlDatabase("test", host="127.0.0.1", max_connections=16)
    with database.atomic():                  # BEGIN is kept back, not sent
        database.defer(sql, params)          # kept back too: no answer is read
        database.execute_sql(sql, params)    # one round trip: "BEGIN; <deferred>; <sql>"
    # COMMIT: one round trip, carrying whatever was still kept back

Every message's transaction was a round trip per statement plus BEGIN and COMMIT: on a
network (or a loopback socket shared with the server's own CPU) those waits were most of a
message's time. psycopg2 already sends each statement as text with its parameters quoted on
the client (the simple query protocol), and that protocol runs several statements separated
by semicolons in one message: the kept-back statements are quoted the same way
(`cursor.mogrify`) and joined before the one that needs an answer. A statement that fails
aborts the transaction at once, as it would have alone; its error comes from the call that
sent it. Nothing changes outside a transaction (autocommit statements go as they are).
"""

from __future__ import annotations

import threading

import peewee
from greenlet import getcurrent
from playhouse.pool import PooledPostgresqlDatabase

from storage.loop import Job, JobStates, await_, drive
from storage.loop_connection import LoopConnection, pg
from storage.loop_pool import LoopPool

_BEGIN = b"BEGIN"
_SAVEPOINTS = ("SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")


class _State(peewee._ConnectionState):
    """peewee's connection state, and the statements kept back in its transaction."""

    def reset(self) -> None:
        super().reset()
        self.pending: list[bytes] = []

    def set_connection(self, conn) -> None:
        super().set_connection(conn)
        self.pending = []


class _ThreadState(_State, threading.local):
    pass


class PipelinedPostgresqlDatabase(JobStates, PooledPostgresqlDatabase):
    """Whose connection: a job's on the loop (storage/loop.py), else the thread's."""

    def __init__(self, *args, jobs: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._jobs = jobs  # connections for jobs on the loop (default: max_connections)
        self._thread_state = _ThreadState()
        self._jobs_pool: LoopPool | None = None

    async def run_job(self, fn, *args):
        """fn(*args) on the loop, in a greenlet of its own holding a connection of the loop's
        pool; returns or raises what fn did."""
        pool = self._loop_pool()
        state = _State()
        state.set_connection(await pool.acquire())
        try:
            return await drive(Job(fn, self, state), *args)
        finally:
            if not state.closed:  # closed: the job gave it up as broken
                pool.release(state.conn, broken=bool(state.transactions))

    def close_loop_connections(self) -> None:
        """Close the loop's idle connections (those in use close when their job ends)."""
        if self._jobs_pool is not None:
            self._jobs_pool.close_idle()

    def connect(self, reuse_if_open=False):
        task = getcurrent()
        if type(task) is not Job or task.database is not self:
            return super().connect(reuse_if_open)
        if not task.db_state.closed:
            if reuse_if_open:
                return False
            raise peewee.OperationalError("Connection already opened.")
        task.db_state.set_connection(await_(self._loop_pool().acquire()))
        return True

    def _close(self, conn) -> None:
        if isinstance(conn, LoopConnection):  # a job closing its connection: it is broken
            self._loop_pool().release(conn, broken=True)
            return
        super()._close(conn)

    def _loop_pool(self) -> LoopPool:
        if self._jobs_pool is None:
            size = self._jobs or self._max_connections
            self._jobs_pool = LoopPool(self._loop_params(), size, self._opened)
        return self._jobs_pool

    def _loop_params(self) -> dict:
        params = dict(self.connect_params)
        if self.database.startswith("postgresql://"):
            params.setdefault("dsn", self.database)
        else:
            params.setdefault("dbname", self.database)
        return params

    def _opened(self, raw) -> None:
        """A new connection of the loop's pool: set up as peewee sets up its own."""
        if self._register_unicode:
            pg.register_type(pg.UNICODE, raw)
        if self.server_version is None:
            self._set_server_version(raw)

    def _pending(self) -> list[bytes]:
        return self._state.pending

    def begin(self, isolation_level=None) -> None:
        if isolation_level or self._isolation_level:
            return super().begin(isolation_level)
        if self.is_closed():
            self.connect()  # as the BEGIN it stands for would (connecting resets transactions)
        pending = self._pending()
        pending.clear()
        pending.append(_BEGIN)

    def defer(self, sql: str, params: tuple | list = ()) -> None:
        """Run `sql` with the next statement sent (or the COMMIT): for writes whose answer
        nobody reads, inside a transaction. Outside one it runs now."""
        if not self.in_transaction():
            self.execute_sql(sql, params)
            return
        self._pending().append(self.cursor().mogrify(sql, params or ()))

    def execute_named(self, name: str, sql: str, params: tuple | list = ()):
        """A prebuilt statement (storage/prebuilt.py) called `name`: on a job's connection
        prepared once and then executed by name, on a cursor kept for them (their callers read
        each answer before the next statement); elsewhere sent as text, as execute_sql does."""
        conn = self._job_connection()
        if conn is None:
            return self.execute_sql(sql, params)
        statement = conn.named(name, sql, params)
        cursor = conn.named_cursor
        if cursor is None:  # one for the connection's life: every caller reads its answer at once
            cursor = conn.named_cursor = self.cursor()
        pending = self._pending()
        text = b"; ".join([*pending, statement])
        pending.clear()
        self._send(cursor, text)
        return cursor

    def defer_named(self, name: str, sql: str, params: tuple | list = ()) -> None:
        """`defer` for a prebuilt statement: prepared on a job's connection (execute_named)."""
        conn = self._job_connection()
        if conn is None or not self.in_transaction():
            return self.defer(sql, params)
        self._pending().append(conn.named(name, sql, params))

    def execute_sql(self, sql, params=None):
        pending = self._pending()
        savepoint = isinstance(sql, str) and sql.startswith(_SAVEPOINTS) and self.in_transaction()
        if savepoint and self._kept_back(sql.rstrip(";"), pending):
            return self.cursor()  # peewee reads nothing from these
        if not pending:
            return super().execute_sql(sql, params)
        cursor = self.cursor()
        text = b"; ".join([*pending, cursor.mogrify(sql, params or ())])
        pending.clear()
        self._send(cursor, text)
        return cursor

    def commit(self) -> None:
        pending = self._pending()
        if pending == [_BEGIN]:  # nothing was sent: there is nothing to commit
            pending.clear()
            return
        if not pending:
            return super().commit()
        text = b"; ".join([*pending, b"COMMIT"])
        pending.clear()
        self._send(self.cursor(), text)

    def rollback(self) -> None:
        pending = self._pending()
        started = not pending or pending[0] != _BEGIN
        if pending:
            self._lost()
        pending.clear()  # what was kept back is undone by never being sent
        conn = self._job_connection()
        if conn is not None and conn.raw.closed:
            return  # abandoned (LoopConnection.abandon): the server undid the transaction
        if started:
            super().rollback()

    def _send(self, cursor, text: bytes) -> None:
        """Several statements in one round trip (the simple query protocol runs them in turn
        and stops at the first that fails)."""
        self._log_query(text, ())
        try:
            with peewee.__exception_wrapper__:
                cursor.execute(text)
        except Exception:
            self._lost()
            raise
        if conn := self._job_connection():
            conn.sent()

    def _lost(self) -> None:
        if conn := self._job_connection():
            conn.lost()

    def _job_connection(self) -> LoopConnection | None:
        """The connection of the job on the loop running now; None on a thread's own."""
        conn = None if self.is_closed() else self._state.conn
        return conn if isinstance(conn, LoopConnection) else None

    def _kept_back(self, sql: str, pending: list[bytes]) -> bool:
        """SAVEPOINT and RELEASE wait for the next statement; a ROLLBACK TO a savepoint that
        was never sent drops it and everything kept back after it. False: send it now."""
        if sql.startswith("ROLLBACK TO SAVEPOINT "):
            opened = ("SAVEPOINT " + sql.removeprefix("ROLLBACK TO SAVEPOINT ")).encode()
            if opened not in pending:
                return False
            self._lost()
            del pending[pending.index(opened) :]
            pending.append(opened)  # the savepoint stands again, as after ROLLBACK TO
            return True
        pending.append(sql.encode())
        return True

    def close(self):
        self._pending().clear()
        return super().close()
