"""What every table stands on: the database proxy bound at start-up, naive UTC times, a JSON
column that works alike on SQLite and PostgreSQL, and the base model.

Usage::

    from storage.models import BaseModel, JSONField, db, utcnow
"""

from __future__ import annotations

import datetime as dt
import json

import peewee as pw

db = pw.DatabaseProxy()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def utc_text(when: dt.datetime | None) -> str:
    """A stored (naive UTC) time as people and scripts read it: ISO 8601 with its offset,
    to the second; "" for none."""
    return when.isoformat(timespec="seconds") + "+00:00" if when else ""


class JSONField(pw.TextField):
    """A JSON document kept as text, so it works the same on SQLite and PostgreSQL."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(pw.Model):
    class Meta:
        database = db
        legacy_table_names = False
