"""What every table stands on: the database proxy bound at start-up, naive UTC times, a JSON
column that works alike on SQLite and PostgreSQL, and the base model.

Usage::

    from storage.models import BaseModel, JSONField, db, utcnow
    to_json({"b": 1, "a": "礼"})   # '{"a":"礼","b":1}': a JSON column's text (keys sorted)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import peewee as pw

db = pw.DatabaseProxy()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def utc_text(when: dt.datetime | None) -> str:
    """A stored (naive UTC) time as people and scripts read it: ISO 8601 with its offset,
    to the second; "" for none."""
    return when.isoformat(timespec="seconds") + "+00:00" if when else ""


_JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS  # keys as json.dumps writes them


class Encoded(str):
    """A JSON column's value as its text already (what `JSONField.db_value` writes): a
    conversation's save wrote it to compare with the row, and it is not written again."""


def to_json(value: Any) -> str:
    """A JSON column's text: keys sorted (the same value, the same text), characters as they
    are (no \\u escapes), no spaces. orjson, in a fifth of the standard library's time: a
    message saves its conversation's three dicts and reads them back (issue 27)."""
    return orjson.dumps(value, option=_JSON_OPTIONS).decode()


class JSONField(pw.TextField):
    """A JSON document kept as text, so it works the same on SQLite and PostgreSQL."""

    def db_value(self, value):
        return None if value is None else to_json(value)

    def python_value(self, value):
        return None if value is None else orjson.loads(value)


class BaseModel(pw.Model):
    class Meta:
        database = db
        legacy_table_names = False
