"""People and their chat: who has written or opened a page, their dialogue in progress,
the pushes seen (each acted on once) and the replay guard.
"""

from __future__ import annotations

import peewee as pw

from storage.models.base import BaseModel, JSONField, utcnow


class User(BaseModel):
    """Anyone who has written to the account or opened its pages; OpenID is the login."""

    openid = pw.CharField(max_length=64, primary_key=True)
    first_seen = pw.DateTimeField(default=utcnow)
    last_seen = pw.DateTimeField(default=utcnow)
    subscribed = pw.BooleanField(default=False)
    unsubscribed_at = pw.DateTimeField(null=True)
    # The user's last message to the account (not a page visit): WeChat lets the account
    # send customer-service messages for 48 hours after it.
    last_message_at = pw.DateTimeField(null=True)


class Conversation(BaseModel):
    """One user's chat dialogue in progress; `version` makes every update compare-and-set."""

    openid = pw.CharField(max_length=64, primary_key=True)
    flow = pw.CharField(max_length=16, null=True)
    step = pw.CharField(max_length=32, null=True)
    answers = JSONField(default=dict)
    context = JSONField(default=dict)
    editing = pw.BooleanField(default=False)  # the step was chosen from the summary
    hints = JSONField(default=dict)  # field name → a place a location message gave
    paused = pw.BooleanField(default=False)
    version = pw.IntegerField(default=0)
    expires_at = pw.DateTimeField(null=True)
    updated_at = pw.DateTimeField(default=utcnow)


class InboundMessage(BaseModel):
    """Every WeChat push seen, keyed by MsgId (or sender + CreateTime + event), with our reply."""

    key = pw.CharField(max_length=128, primary_key=True)
    openid = pw.CharField(max_length=64)
    received_at = pw.DateTimeField(default=utcnow, index=True)
    reply = JSONField(null=True)  # None while the first delivery is still being handled


class PushNonce(BaseModel):
    """A plaintext-mode push's (timestamp, nonce), hashed, with its body's hash: the replay guard."""

    key = pw.CharField(max_length=64, primary_key=True)
    body_sha256 = pw.CharField(max_length=64)
    stamp = pw.BigIntegerField(index=True)  # the push's timestamp: kept while it would pass
