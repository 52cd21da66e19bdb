"""WeChat's pushes as seen: the plaintext-mode replay guard, and forgetting what is no longer needed.

Usage::

    chat.handle(msg, guard("1790000000", "41526", body))  # Replayed: that nonce, another body
    prune(now)    # drop guards and stored replies past their window

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


class Replayed(Exception):
    """A used (timestamp, nonce) came with another body."""


def guard(timestamp: str, nonce: str, body: bytes) -> tuple[str, str, int]:
    """What the replay guard keeps of a signed request: (key, body hash, stamp)."""
    key = hashlib.sha256(f"{timestamp}|{nonce}".encode()).hexdigest()
    return key, hashlib.sha256(body).hexdigest(), int(timestamp)


def prune(now: dt.datetime | None = None) -> int:
    """Forget replay guards whose timestamps have gone stale, and replies past WeChat's retries."""
    now = now or utcnow()
    stale = int(now.replace(tzinfo=dt.UTC).timestamp()) - 2 * GUARD_SECONDS
    guards = PushNonce.delete().where(PushNonce.stamp < stale).execute()
    replies = InboundMessage.delete().where(InboundMessage.received_at < now - REPLY_KEPT).execute()
    return guards + replies
