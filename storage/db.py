"""Bind the models to the database named by `[database] url`, and bring its schema up to date.

Usage::

    database = storage.db.connect("sqlite:///data/gift-bot.db")   # binds storage.models.db
    storage.db.migrate()                                           # idempotent

SQLite runs in WAL mode (readers never wait for the writer) with a busy timeout
so that several processes can write, and `synchronous=FULL`; PostgreSQL goes
through a connection pool (`playhouse.pool`) that sends BEGIN and the writes nobody reads
an answer of with the next statement (storage/pipeline.py).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path

import peewee
from playhouse import db_url
from playhouse.migrations import Runner

from storage import prebuilt
from storage.loop import Local
from storage.models import ALL_MODELS, db
from storage.pipeline import PipelinedPostgresqlDatabase
from storage.sqlite import LoopSqliteDatabase

MIGRATIONS = Path(__file__).parent / "migrations"

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    # FULL: a commit is on disk when it returns (NORMAL in WAL can lose the last commits on
    # power loss). Writes group-commit (storage/runner.py), so this costs one fsync a batch.
    "synchronous": "full",
    "busy_timeout": 10_000,
    "foreign_keys": 1,
}


def connect(url: str, max_connections: int = 16, jobs: int | None = None) -> peewee.Database:
    """Open the database at `url` and bind every model to it. PostgreSQL: at most `jobs`
    (default `max_connections`) connections for the jobs on the event loop (storage/loop.py),
    and a pool of at most `max_connections` for work outside a loop (the CLI, migrations)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        database = LoopSqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS, timeout=10)
    else:
        params = db_url.parse(url.replace("postgres://", "postgresql://", 1))
        database = PipelinedPostgresqlDatabase(
            max_connections=max_connections, jobs=jobs, stale_timeout=300, timeout=10, **params
        )
    db.initialize(database)
    prebuilt.use(postgres=isinstance(database, peewee.PostgresqlDatabase))
    return database


def migrate() -> list[str]:
    """Apply the migrations not yet applied; returns their names.

    Several workers may start at once: on PostgreSQL an advisory lock lets one
    migrate while the others wait; on SQLite the IMMEDIATE transaction does.
    SQLite changes a column by building the table anew (peewee's migrator), which
    its foreign keys would refuse while other rows point at the old table: as
    SQLite's own ALTER TABLE procedure says, they are switched off around the
    transaction, and `foreign_key_check` must find nothing broken before it commits.
    """
    sqlite = not is_postgres()
    if sqlite:
        db.execute_sql("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: none here
    try:
        with write_transaction():
            if not sqlite:
                db.execute_sql("SELECT pg_advisory_xact_lock(7040118)")
            runner = Runner(db.obj, directory=str(MIGRATIONS))
            pending = [m.name for m in runner.status() if not m.applied]
            if pending:
                runner.up()
            if sqlite and (broken := db.execute_sql("PRAGMA foreign_key_check").fetchall()):
                raise RuntimeError(f"the migrations broke foreign keys: {broken[:5]}")
    finally:
        if sqlite:
            db.execute_sql("PRAGMA foreign_keys = ON")
    return pending


@contextlib.contextmanager
def write_transaction():
    """A transaction for read-then-write work (inside another one: a savepoint).

    On SQLite it takes the write lock at BEGIN (IMMEDIATE), so two writers
    queue on the busy timeout instead of failing when a read turns into a
    write; on PostgreSQL pair it with `locked()` rows. Work registered with
    `after_commit` runs once the outermost transaction has committed.
    """
    outermost = not db.in_transaction()
    sqlite = isinstance(db.obj, peewee.SqliteDatabase)
    try:
        with db.atomic(lock_type="IMMEDIATE") if sqlite and outermost else db.atomic():
            yield
    except BaseException:
        if outermost:
            _after_commit.vars().pop("work", None)
        raise
    if outermost:
        for work in _after_commit.vars().pop("work", []):
            work()


_after_commit = Local()  # per thread, and per job on the loop


def after_commit_mark() -> int:
    """Where the work registered so far ends (see after_commit_drop)."""
    return len(_after_commit.vars().get("work", []))


def after_commit_drop(mark: int) -> None:
    """Forget the work registered since `mark`: its savepoint was rolled back."""
    del _after_commit.vars().get("work", [])[mark:]


def after_commit(work: Callable[[], None]) -> None:
    """Run `work` once the current transaction commits (now, outside one); never on rollback."""
    if not db.in_transaction():
        work()
        return
    _after_commit.vars().setdefault("work", []).append(work)


def locked(query):
    """SELECT … FOR UPDATE where the database has it (SQLite is already serialized)."""
    return query.for_update() if is_postgres() else query


NAMED_LOCKS = 7040119  # the advisory locks' first key: hold()'s names (migrate's is 7040118)


def hold(name: str) -> None:
    """Hold the lock called `name` until the current transaction ends: work that counts rows
    and then adds one runs one at a time per name, whatever the processes. PostgreSQL: an
    advisory lock, keyed by a hash of the name (two names sharing a key only wait for each
    other); SQLite: the write transaction already holds the only write lock."""
    if not db.in_transaction():
        raise RuntimeError("hold() outside a transaction would hold nothing")
    if is_postgres():
        digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
        key = int.from_bytes(digest, "big", signed=True)
        db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (NAMED_LOCKS, key))


def is_alive() -> bool:
    """True when the database answers a trivial query."""
    try:
        db.execute_sql("SELECT 1").fetchone()
        return True
    except peewee.DatabaseError:
        db.close()
        return False


def is_postgres() -> bool:
    return isinstance(db.obj, peewee.PostgresqlDatabase)


__all__ = [
    "ALL_MODELS",
    "after_commit",
    "connect",
    "db",
    "hold",
    "is_alive",
    "is_postgres",
    "locked",
    "migrate",
    "write_transaction",
]
