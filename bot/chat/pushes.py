"""WeChat's pushes as seen: the plaintext-mode replay guard, and forgetting what is no longer needed.

Usage::

    chat.handle(msg, guard("1790000000", "41526", body))  # Replayed: that nonce, another body
    while prune(now):   # drop guards and stored replies past their window, a job at a time
        pass

In plaintext mode the signature covers only the token, timestamp and nonce,
not the body: whoever saw one signed request could send another body under it
while the timestamp is fresh. So each (timestamp, nonce) is kept with a hash of
its body, in the database so every worker sees it; the same body again is
WeChat's retry, another body is a replay. A guard is needed only while its
timestamp would pass the 5-minute check, and a stored reply only while WeChat
may retry its message, so both are pruned.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from storage.models import InboundMessage, PushNonce, utcnow

GUARD_SECONDS = 300  # the callback refuses timestamps further off than this
REPLY_KEPT = dt.timedelta(minutes=10)  # WeChat retries within ~15 s; a wide margin
# Rows of each kind one prune deletes at most. A campaign leaves a minute's pushes at each
# sweep (60 000 at 1 000 a second: 160 ms of SQLite in one DELETE); in jobs of 2 000 (about
# 5 ms each) the messages arriving meanwhile are written between them, not after them all.
PRUNED_PER_JOB = 2_000


class Replayed(Exception):
    """A used (timestamp, nonce) came with another body."""


def guard(timestamp: str, nonce: str, body: bytes) -> tuple[str, str, int]:
    """What the replay guard keeps of a signed request: (key, body hash, stamp)."""
    key = hashlib.sha256(f"{timestamp}|{nonce}".encode()).hexdigest()
    return key, hashlib.sha256(body).hexdigest(), int(timestamp)


def prune(now: dt.datetime | None = None, limit: int = PRUNED_PER_JOB) -> int:
    """Forget up to `limit` replay guards whose timestamps have gone stale, and up to `limit`
    replies past WeChat's retries; returns how many. Call again until it returns 0."""
    now = now or utcnow()
    stale = int(now.replace(tzinfo=dt.UTC).timestamp()) - 2 * GUARD_SECONDS
    guards = PushNonce.select(PushNonce.key).where(PushNonce.stamp < stale)
    replies = InboundMessage.select(InboundMessage.key).where(
        InboundMessage.received_at < now - REPLY_KEPT
    )
    return (
        PushNonce.delete().where(PushNonce.key.in_(guards.limit(limit))).execute()
        + InboundMessage.delete().where(InboundMessage.key.in_(replies.limit(limit))).execute()
    )
