"""Statements written once as SQL, for each database, and run by name through peewee's
`execute_sql`: on the paths every message or page takes, building a query with peewee's
query builder cost more than running it.

Usage::

    @statements                                 # a module's statements, built per database
    def _sql(postgres: bool) -> dict[str, str]:
        p = "%s" if postgres else "?"
        return {"share_by_token": f"SELECT … FROM share WHERE token = {p}"}

    row = run("share_by_token", (token,)).fetchone()
    defer("keep_reply", (reply, key))           # a write nobody reads an answer of
    share = instance(Share, row)                # a model from a row of all its columns
    has("open_message")                         # a statement this database has (PostgreSQL only)
    ahead = Ahead(); ahead.keep(key, value)     # read ahead by a statement, for one later read
    ahead.take(key)                             # … in the same transaction, once (else None)

`storage.db.connect` calls `use` with the database it binds. On PostgreSQL, within a job on
the loop, each statement is prepared once per connection and executed by name
(storage/pipeline.py): parsed and planned once instead of at every message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from storage.loop import Local
from storage.models import db

_builders: list[Callable[[bool], dict[str, str]]] = []
_bound: dict[str, dict[str, str]] = {"sql": {}}
_postgres = [False]


def statements(build: Callable[[bool], dict[str, str]]) -> Callable[[bool], dict[str, str]]:
    """Register a module's statements; `build(postgres)` gives them for one database."""
    _builders.append(build)
    _bound["sql"] = {**_bound["sql"], **build(_postgres[0])}
    return build


def use(postgres: bool) -> None:
    """The statements for the database bound now."""
    _postgres[0] = postgres
    sql: dict[str, str] = {}
    for build in _builders:
        sql.update(build(postgres))
    _bound["sql"] = sql


def sql(name: str) -> str:
    return _bound["sql"][name]


def has(name: str) -> bool:
    return name in _bound["sql"]


def run(name: str, params: tuple | list = ()):
    """Run the statement; its cursor. On PostgreSQL a prepared statement where the connection
    allows (storage/pipeline.py)."""
    named = getattr(db.obj, "execute_named", None)
    if named is None:
        return db.execute_sql(_bound["sql"][name], params)
    return named(name, _bound["sql"][name], params)


def defer(name: str, params: tuple | list = ()) -> None:
    """A write whose answer nobody reads: on PostgreSQL it goes with the next statement or the
    COMMIT (storage/pipeline.py); SQLite, in process, runs it now."""
    later = getattr(db.obj, "defer_named", None)
    if later is None:
        run(name, params)
    else:
        later(name, _bound["sql"][name], params)


def columns(model, alias: str = "") -> str:
    """All the model's columns, quoted, in its fields' order (what `instance` reads)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f'{prefix}"{f.column_name}"' for f in model._meta.sorted_fields)


def instance(model, row: tuple | None) -> Any:
    """A model instance from a row of all its columns, as peewee would have made it."""
    if row is None:
        return None
    made = model(__no_default__=True)  # as peewee's own rows: no defaults worked out first
    fields = model._meta.sorted_fields
    made.__data__ = {f.name: f.python_value(v) for f, v in zip(fields, row, strict=True)}
    return made


class Ahead:
    """What a statement read ahead for one later read in the same transaction (a message's
    opening statement reads what its step will ask for, a round trip saved): `take` gives it
    once, when the transaction and the key are the same, else None. Once only: a later read
    may follow the transaction's own writes. Each job or thread keeps its own."""

    def __init__(self):
        self._kept = Local()

    def keep(self, key: Any, value: Any) -> None:
        self._kept.value = (db.top_transaction(), key, value)

    def take(self, key: Any) -> Any:
        kept, self._kept.value = getattr(self._kept, "value", None), None
        if kept is not None and kept[0] is db.top_transaction() and kept[1] == key:
            return kept[2]
        return None
