"""The statements every WeChat message runs, written once as SQL (storage/prebuilt.py):
building them with peewee's query builder cost more than running them.

Usage (inside the message's transaction)::

    opened = open_message(key, openid, now, guard)  # the four below in one round trip
    first = claim_message(key, openid, now)    # False: WeChat's retry of a message seen
    stored_reply(key); keep_reply(key, reply)
    touch_user(openid, now)
    row = conversation_row(openid)             # (flow, step, answers, …) or None; locked
    insert_conversation(openid, values); update_conversation(openid, version, values)
    catalogue_version()                        # bumped by a trigger on every gift change
    guard_push(key, body_sha256, stamp)        # the plaintext-mode replay guard

Everything else (the schema, migrations, pages, the CLI) stays peewee. Values go in and
come out through the models' own field conversions, so this module and the models agree
on every stored format; tests run both databases through it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from storage import prebuilt, share_reads
from storage.loop import Local
from storage.models import Conversation, InboundMessage, Outbox, Share, User, db
from storage.models.base import Encoded

CONVERSATION_COLUMNS = (
    "flow", "step", "answers", "context", "editing", "hints", "paused", "version",
    "expires_at", "updated_at",
)  # fmt: skip
_FIELDS = {name: Conversation._meta.fields[name] for name in CONVERSATION_COLUMNS}
_JSON = ("answers", "context", "hints")


@prebuilt.statements
@functools.cache
def _statements(postgres: bool) -> dict[str, str]:
    p = "%s" if postgres else "?"
    columns = ", ".join(CONVERSATION_COLUMNS)
    assignments = ", ".join(f"{c} = {p}" for c in CONVERSATION_COLUMNS)
    lock = " FOR UPDATE" if postgres else ""  # SQLite: the writer holds the only write lock
    sql = {
        "claim_message": f"INSERT INTO inbound_message (key, openid, received_at) "
        f"VALUES ({p}, {p}, {p}) ON CONFLICT DO NOTHING",
        "stored_reply": f"SELECT reply FROM inbound_message WHERE key = {p}",
        "keep_reply": f"UPDATE inbound_message SET reply = {p} WHERE key = {p}",
        "touch_user": f'INSERT INTO "user" (openid, first_seen, last_seen, subscribed) '
        f"VALUES ({p}, {p}, {p}, {p}) "
        "ON CONFLICT (openid) DO UPDATE SET last_seen = excluded.last_seen",
        "touch_messaging_user": 'INSERT INTO "user" (openid, first_seen, last_seen, subscribed, '
        f"last_message_at) VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (openid) DO UPDATE SET "
        "last_seen = excluded.last_seen, last_message_at = excluded.last_message_at",
        "conversation_row": f"SELECT {columns} FROM conversation WHERE openid = {p}{lock}",
        "insert_conversation": f"INSERT INTO conversation (openid, {columns}) "
        f"VALUES ({p}, {', '.join([p] * len(CONVERSATION_COLUMNS))})",
        "update_conversation": f"UPDATE conversation SET {assignments} "
        f"WHERE openid = {p} AND version = {p}",
        "catalogue_version": "SELECT version FROM catalogue_version WHERE id = 1",
        "enqueue": f"INSERT INTO outbox (key, kind, payload, status, attempts, next_attempt_at, "
        f"last_error, created_at, sent_by) VALUES ({p}, {p}, {p}, 'pending', 0, {p}, '', {p}, '') "
        "ON CONFLICT DO NOTHING",
        # The units a giver holds, beside each of their latest shares' time (none: one row of
        # units and NULL): both of a giver's limits in one statement.
        "giver_allowance": "SELECT held.units, recent.created_at FROM (SELECT "
        "COALESCE(SUM(quantity - claimed), 0) AS units FROM share "
        f"WHERE giver_id = {p} AND NOT released AND expires_at > {p}) AS held "
        f"LEFT JOIN (SELECT created_at FROM share WHERE giver_id = {p} AND created_at > {p} "
        f"ORDER BY created_at DESC LIMIT {p}) AS recent ON 1 = 1 ORDER BY recent.created_at DESC",
        "guard_push": f"INSERT INTO push_nonce (key, body_sha256, stamp) VALUES ({p}, {p}, {p}) "
        "ON CONFLICT DO NOTHING",
        "guarded_body": f"SELECT body_sha256 FROM push_nonce WHERE key = {p}",
    }
    # PostgreSQL only (SQLite has no INSERT in WITH; there each part runs on its own, in
    # process, with no round trip to save). The guard's and the claim's inserts, the stored
    # reply and guard as they were (a concurrent first delivery shows neither: the caller
    # asks again), the catalogue's version, the conversation, locked, and the share its
    # context names (`share_reads.share_by_token` takes it instead of asking again).
    if postgres:
        sql["open_message"] = (
            "WITH guarded AS (INSERT INTO push_nonce (key, body_sha256, stamp) "
            "SELECT %s, %s, %s WHERE %s ON CONFLICT DO NOTHING RETURNING 1), "
            "claimed AS (INSERT INTO inbound_message (key, openid, received_at) "
            "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1), "
            f"conv AS (SELECT openid, {columns} FROM conversation WHERE openid = %s FOR UPDATE) "
            "SELECT (SELECT count(*) FROM guarded), "
            "(SELECT body_sha256 FROM push_nonce WHERE key = %s), "
            "(SELECT count(*) FROM claimed), (SELECT reply FROM inbound_message WHERE key = %s), "
            "(SELECT version FROM catalogue_version WHERE id = 1), "
            f"conv.openid IS NOT NULL, {', '.join(f'conv.{c}' for c in CONVERSATION_COLUMNS)}, "
            f"giving.held, giving.made, {prebuilt.columns(Share, 's')} "
            "FROM (VALUES (1)) AS one LEFT JOIN conv ON true "
            # In a giving dialogue (the flows the caller names), the giver's allowance.
            "LEFT JOIN LATERAL (SELECT (SELECT COALESCE(SUM(quantity - claimed), 0) FROM share "
            "WHERE giver_id = conv.openid AND NOT released AND expires_at > %s) AS held, "
            "ARRAY(SELECT created_at FROM share WHERE giver_id = conv.openid AND created_at > %s "
            "ORDER BY created_at DESC LIMIT %s) AS made WHERE conv.flow = ANY(%s::text[])) "
            "AS giving ON true "
            # The share a claim's form is about (its context names it): its next read.
            "LEFT JOIN share AS s ON s.token = conv.context::json ->> 'token'"
        )
    return sql


_run, _defer = prebuilt.run, prebuilt.defer


@dataclass
class Opened:
    """What opening a message found: `replayed` (the guard's key came with another body),
    `first` (False: a retry, whose first reply is `stored`), the conversation row (as
    `conversation_row` gives it, locked)."""

    replayed: bool
    first: bool
    stored: dict | None
    conversation: dict[str, Any] | None


def open_message(
    key: str, openid: str, now: Any, guard: tuple | None, giving: tuple | None = None
) -> Opened:
    """The start of every message: the plaintext-mode replay guard (`guard`: key, body hash,
    stamp; None in safe mode), the push's key (a retry is not first), and the user's
    conversation. One statement on PostgreSQL, which also reads the catalogue's version for
    this transaction (`catalogue_version`), the share a claim is about (`share_reads`) and,
    in one of `giving`'s flows, the giver's allowance (`giver_allowance(…, opened=True)`;
    `giving`: the giving dialogues' flows, the hour's start, the shares an hour allows)."""
    if not prebuilt.has("open_message"):
        replayed = bool(guard) and guard_push(*guard) != guard[1]
        first = not replayed and claim_message(key, openid, now)
        stored = None if replayed or first else stored_reply(key)
        row = conversation_row(openid) if first else None
        return Opened(replayed, first, stored, row)
    g_key, g_body, g_stamp = guard or ("", "", 0)
    received = InboundMessage.received_at.db_value(now)
    flows, since, limit = giving or ((), now, 0)
    window = (Share.expires_at.db_value(now), Share.created_at.db_value(since), limit)
    params = (g_key, g_body, g_stamp, bool(guard), key, openid, received, openid, g_key, key,
              *window, _text_array(flows))  # fmt: skip
    row = _run("open_message", params).fetchone()
    guarded, kept_body, claimed, stored, version, found = row[:6]
    _version.seen = (db.top_transaction(), version)
    if guard and not guarded:
        kept_body = kept_body or guarded_body(g_key)
        if kept_body != g_body:
            return Opened(True, False, None, None)
    if not claimed:
        value = InboundMessage.reply.python_value(stored) if stored else stored_reply(key)
        return Opened(False, False, value, None)
    end = 6 + len(CONVERSATION_COLUMNS)
    held, made = row[end : end + 2]
    if held is None:
        _giving.keep(None, None)
    else:
        _giving.keep((openid, *window), (held, _times(made)))
    share_reads.opened(row[end + 2 :])
    return Opened(False, True, None, _conversation(row[6:end]) if found else None)


def claim_message(key: str, openid: str, now: Any) -> bool:
    """Record a push's key; False when it was there already (a retry)."""
    received = InboundMessage.received_at.db_value(now)
    return _run("claim_message", (key, openid, received)).rowcount == 1


def guarded_body(key: str) -> str:
    row = _run("guarded_body", (key,)).fetchone()
    return row[0] if row else ""


def stored_reply(key: str) -> dict | None:
    row = _run("stored_reply", (key,)).fetchone()
    return InboundMessage.reply.python_value(row[0]) if row else None


def keep_reply(key: str, reply: dict) -> None:
    _defer("keep_reply", (InboundMessage.reply.db_value(reply), key))


def touch_user(openid: str, now: Any, message: bool = False) -> None:
    """Record the user as seen now; `message`: they wrote to the account (WeChat's 48-hour
    window for customer-service messages opens again), not only opened a page."""
    seen = User.last_seen.db_value(now)  # deferred: the next statement still finds the row
    if message:
        _defer("touch_messaging_user", (openid, seen, seen, User.subscribed.db_value(False), seen))
    else:
        _defer("touch_user", (openid, seen, seen, User.subscribed.db_value(False)))


def conversation_row(openid: str) -> dict[str, Any] | None:
    """The user's conversation columns, and under "stored" the JSON columns' text as kept
    (what `JSONField.db_value` writes), to tell later whether they changed."""
    row = _run("conversation_row", (openid,)).fetchone()
    return None if row is None else _conversation(row)


def _conversation(row: tuple) -> dict[str, Any]:
    values = {name: _FIELDS[name].python_value(v) for name, v in zip(_FIELDS, row, strict=True)}
    values["stored"] = {name: v for name, v in zip(_FIELDS, row, strict=True) if name in _JSON}
    return values


def insert_conversation(openid: str, values: dict[str, Any]) -> None:
    _run("insert_conversation", (openid, *_db_values(values)))


def update_conversation(openid: str, version: int, values: dict[str, Any]) -> int:
    """Compare-and-set on `version`: the number of rows changed (1, or 0 when it moved on).
    On PostgreSQL the row was read FOR UPDATE in this transaction (`open_message`,
    `conversation_row`), so its version cannot have moved: the update goes with the COMMIT."""
    params = (*_db_values(values), openid, version)
    if prebuilt.has("open_message"):
        _defer("update_conversation", params)
        return 1
    return _run("update_conversation", params).rowcount


def guard_push(key: str, body_sha256: str, stamp: int) -> str:
    """Record a signed request's (hashed) timestamp and nonce with its body's hash; returns
    the body hash kept under that key: this one's when new, the first one's when not."""
    if _run("guard_push", (key, body_sha256, stamp)).rowcount == 1:
        return body_sha256
    return guarded_body(key)


def enqueue(kind: str, key: str, payload: dict, now: Any, answer: bool = True) -> bool | None:
    """An outbox row, unless one with this key exists; True when added (`answer` false: not
    asked, and the insert may be deferred)."""
    at = Outbox.created_at.db_value(now)
    params = (key, kind, Outbox.payload.db_value(payload), at, at)
    if not answer:
        return _defer("enqueue", params)
    return _run("enqueue", params).rowcount == 1


def giver_allowance(
    giver: str, now: Any, since: Any, limit: int, opened: bool = False
) -> tuple[int, list]:
    """The units the giver holds in shares neither released nor expired, and when their latest
    shares (at most `limit`) since `since` were made, newest first. `opened`: the message's
    opening statement may have read them (a giving dialogue's steps), before anything in the
    transaction wrote: taken once, never where a share is about to be made."""
    window = (Share.expires_at.db_value(now), Share.created_at.db_value(since), limit)
    kept = _giving.take((giver, *window))  # taken either way: a later look asks anew
    if opened and kept is not None:
        return kept
    rows = _run("giver_allowance", (giver, window[0], giver, window[1], limit)).fetchall()
    return rows[0][0], _times(row[1] for row in rows if row[1] is not None)


@functools.cache
def _text_array(words: tuple[str, ...]) -> str:
    """PostgreSQL's literal of a text array (plain words only): a list costs psycopg2 more."""
    assert all(w.isidentifier() for w in words), words
    return "{" + ",".join(words) + "}"


def _times(values) -> list:
    return [Share.created_at.python_value(value) for value in values]


_giving = prebuilt.Ahead()  # (units held, latest shares' times), by the allowance's arguments


def catalogue_version() -> int:
    """The catalogue's version, read once per transaction (a claim's message asks two or three
    times; on PostgreSQL its opening statement read it already), until the transaction
    changes gifts itself."""
    top = db.top_transaction()
    seen = getattr(_version, "seen", None)
    if top is not None and seen is not None and seen[0] is top:
        return seen[1]
    row = _run("catalogue_version").fetchone()
    version = row[0] if row else 0
    if top is not None:
        _version.seen = (top, version)
    return version


def catalogue_changed() -> None:
    """Gifts changed in this transaction: read the version afresh when next asked."""
    _version.seen = None


_version = Local()  # (the transaction that read it, the version)


def _db_values(values: dict[str, Any]) -> list:
    pairs = ((field, values[name]) for name, field in _FIELDS.items())
    return [value if type(value) is Encoded else field.db_value(value) for field, value in pairs]
