"""What goes out: the outbox, the WeChat access token shared by workers, and one-time
subscriptions granted.
"""

from __future__ import annotations

import peewee as pw

from storage.models.base import BaseModel, JSONField, utcnow
from storage.models.gifting import Share


class Outbox(BaseModel):
    """An outside call to make (SMS, WeChat message), written in the transaction that caused it."""

    key = pw.CharField(max_length=128, unique=True)  # idempotency key, e.g. sms:order:<no>
    kind = pw.CharField(max_length=32)
    payload = JSONField()
    status = pw.CharField(max_length=16, default="pending", index=True)  # pending|sent|dead|skipped
    attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.DateTimeField(default=utcnow, index=True)
    lease_until = pw.DateTimeField(null=True)
    last_error = pw.TextField(default="")
    created_at = pw.DateTimeField(default=utcnow)
    sent_at = pw.DateTimeField(null=True)
    # When an attempt began whose end nobody saw (a timeout, a worker gone mid-send): a
    # channel that can ask the outside world whether it went asks before sending again.
    in_doubt_since = pw.DateTimeField(null=True)
    # How it left, when it did: a notice's channel (bot/outgoing/channels.py), "" for the rest.
    sent_by = pw.CharField(max_length=64, default="")


class ApiToken(BaseModel):
    """A cached credential of an outside API (the WeChat access_token), shared by all workers."""

    name = pw.CharField(max_length=32, primary_key=True)
    value = pw.TextField()
    expires_at = pw.DateTimeField()


class SubscriptionGrant(BaseModel):
    """A one-time subscription (一次性订阅消息) someone confirmed on WeChat's page for news of a
    share: one message. WeChat keeps one per (person, template, scene) until it is used, and
    so does the partial unique index; `used_at`/`used_by` (the outbox row that took it) are
    set once, by a guarded UPDATE (bot/outgoing/subscriptions.py)."""

    openid = pw.CharField(max_length=64)
    share = pw.ForeignKeyField(Share, backref="grants", on_delete="CASCADE")
    template_id = pw.CharField(max_length=128)
    scene = pw.IntegerField()
    nonce = pw.CharField(max_length=32, unique=True)  # the signed `reserved`'s: a replay adds none
    granted_at = pw.DateTimeField(default=utcnow)
    used_at = pw.DateTimeField(null=True)
    used_by = pw.CharField(max_length=32, default="")


SubscriptionGrant.add_index(
    SubscriptionGrant.index(
        SubscriptionGrant.openid, SubscriptionGrant.template_id, SubscriptionGrant.scene,
        unique=True, where=SubscriptionGrant.used_at.is_null(), name="subscription_grant_unused",
    )
)  # fmt: skip
