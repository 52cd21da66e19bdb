"""WeChat's pushes as seen: the plaintext-mode replay guard, and forgetting what is no longer needed.

Usage::

    first_sight("1790000000", "41526", body)   # True: new, or WeChat's retry of the same body
    prune(now)                                 # drop guards and stored replies past their window

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

from storage import hot
from storage.models import InboundMessage, PushNonce, utcnow

GUARD_SECONDS = 300  # the callback refuses timestamps further off than this
REPLY_KEPT = dt.timedelta(minutes=10)  # WeChat retries within ~15 s; a wide margin


def first_sight(timestamp: str, nonce: str, body: bytes) -> bool:
    """Remember this signed request; False when its (timestamp, nonce) came with another body."""
    key = hashlib.sha256(f"{timestamp}|{nonce}".encode()).hexdigest()
    digest = hashlib.sha256(body).hexdigest()
    return hot.guard_push(key, digest, int(timestamp)) == digest


def prune(now: dt.datetime | None = None) -> int:
    """Forget replay guards whose timestamps have gone stale, and replies past WeChat's retries."""
    now = now or utcnow()
    stale = int(now.replace(tzinfo=dt.UTC).timestamp()) - 2 * GUARD_SECONDS
    guards = PushNonce.delete().where(PushNonce.stamp < stale).execute()
    replies = InboundMessage.delete().where(InboundMessage.received_at < now - REPLY_KEPT).execute()
    return guards + replies
