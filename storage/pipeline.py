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
from playhouse.pool import PooledPostgresqlDatabase

_BEGIN = b"BEGIN"
_SAVEPOINTS = ("SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")


class PipelinedPostgresqlDatabase(PooledPostgresqlDatabase):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._kept = threading.local()  # per thread, like peewee's connection state

    def _pending(self) -> list[bytes]:
        pending = getattr(self._kept, "pending", None)
        if pending is None:
            pending = self._kept.pending = []
        return pending

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
        self._log_query(text, ())
        with peewee.__exception_wrapper__:
            cursor.execute(text)
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
        with peewee.__exception_wrapper__:
            self.cursor().execute(text)

    def rollback(self) -> None:
        pending = self._pending()
        started = not pending or pending[0] != _BEGIN
        pending.clear()  # what was kept back is undone by never being sent
        if started:
            super().rollback()

    @staticmethod
    def _kept_back(sql: str, pending: list[bytes]) -> bool:
        """SAVEPOINT and RELEASE wait for the next statement; a ROLLBACK TO a savepoint that
        was never sent drops it and everything kept back after it. False: send it now."""
        if sql.startswith("ROLLBACK TO SAVEPOINT "):
            opened = ("SAVEPOINT " + sql.removeprefix("ROLLBACK TO SAVEPOINT ")).encode()
            if opened not in pending:
                return False
            del pending[pending.index(opened) :]
            pending.append(opened)  # the savepoint stands again, as after ROLLBACK TO
            return True
        pending.append(sql.encode())
        return True

    def close(self):
        self._pending().clear()
        return super().close()
