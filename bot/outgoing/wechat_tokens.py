"""The WeChat access_token, kept in one database row that every worker and process shares.

Usage::

    token, expires_at = stored()  # None when missing or about to expire: fetch a new one
    good(expires_at)              # whether a token (a process's copy of the row) is still good
    store(token, expires_at)
    drop(refused_token)           # only that one: another worker may have stored a fresher
    stored("sandbox")             # another row: the /dev sandbox's stand-in of WeChat's API

Per-process tokens fetched through /cgi-bin/token would invalidate each other; one row,
filled through /cgi-bin/stable_token (bot/outgoing/wechat_api.py), does not.
"""

from __future__ import annotations

import datetime as dt

from storage.models import ApiToken, utcnow

ROW = "wechat"
MARGIN = dt.timedelta(minutes=5)  # a token this close to its expiry counts as gone


def stored(row_name: str = ROW) -> tuple[str, dt.datetime] | None:
    """The shared token and its expiry, unless missing or within MARGIN of expiry."""
    row = ApiToken.get_or_none(ApiToken.name == row_name)
    if row is None or not good(row.expires_at):
        return None
    return row.value, row.expires_at


def good(expires_at: dt.datetime) -> bool:
    """Whether a token expiring then is not yet within MARGIN of it."""
    return expires_at - utcnow() >= MARGIN


def store(token: str, expires_at: dt.datetime, row_name: str = ROW) -> None:
    (
        ApiToken.insert(name=row_name, value=token, expires_at=expires_at)
        .on_conflict(
            conflict_target=[ApiToken.name],
            update={ApiToken.value: token, ApiToken.expires_at: expires_at},
        )
        .execute()
    )


def drop(token: str, row_name: str = ROW) -> None:
    # Only that token: another worker may already have stored a fresh one.
    ApiToken.delete().where((ApiToken.name == row_name) & (ApiToken.value == token)).execute()
