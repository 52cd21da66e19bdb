"""The tables, as peewee models.

Usage::

    from storage.models import Gift, Share, db
    with db.atomic():
        Share.create(...)

`db` is a proxy bound at start-up by `storage.db.connect()`. Times are naive
UTC datetimes. The schema itself is created by `storage/migrations/`; a test
checks that the migrations and these models agree.
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


class Gift(BaseModel):
    """A catalogue entry, synced from `[[gifts]]`; `committed` units are held by shares."""

    id = pw.CharField(max_length=32, primary_key=True)
    position = pw.IntegerField(default=0)
    name = pw.CharField(max_length=64)
    price = pw.IntegerField()
    description = pw.TextField(default="")
    image = pw.CharField(max_length=512, default="")
    variants = JSONField(default=list)
    stock = pw.IntegerField(default=0)
    committed = pw.IntegerField(default=0)
    active = pw.BooleanField(default=True)
    updated_at = pw.DateTimeField(default=utcnow)

    @property
    def available(self) -> int:
        return max(self.stock - self.committed, 0)


class Share(BaseModel):
    """A gift sent by a giver: `quantity` units, one per recipient, claimable until `expires_at`."""

    token = pw.CharField(max_length=64, unique=True)
    giver = pw.ForeignKeyField(User, backref="shares", on_delete="RESTRICT")
    gift = pw.ForeignKeyField(Gift, backref="shares", on_delete="RESTRICT")
    quantity = pw.IntegerField()
    claimed = pw.IntegerField(default=0)
    blessing = pw.TextField(default="")
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField(index=True)
    released = pw.BooleanField(default=False)  # unclaimed units returned to stock
    revoked_at = pw.DateTimeField(null=True)  # the giver withdrew it (its units returned)
    reminded_at = pw.DateTimeField(null=True)  # the giver was reminded it is about to expire
    qr_url = pw.CharField(max_length=512, null=True)
    qr_expires_at = pw.DateTimeField(null=True)
    # New ways to give (issue 18): a surprise hides the gift until the order; a draw's
    # `quantity` is its winners, drawn at `draw_at` (bot/gifting/draws.py).
    kind = pw.CharField(max_length=8, default="gift")  # gift | surprise | draw
    variant = pw.CharField(max_length=64, default="")  # a surprise's variant, chosen by its giver
    draw_at = pw.DateTimeField(null=True)
    drawn_at = pw.DateTimeField(null=True)
    # [payments] mode "wechatpay" (0006): "" free, else unpaid → paid, or unpaid → lapsed (the
    # hold ended unpaid); unit_price in fen as the giver bought it, what a refund returns per unit
    payment = pw.CharField(max_length=8, default="")
    unit_price = pw.IntegerField(default=0)
    theme = pw.CharField(max_length=16, default="")  # [[themes]] id its giver picked; "": none

    @property
    def left(self) -> int:
        return self.quantity - self.claimed


class Order(BaseModel):
    """One recipient's claim of one unit of a share, with where and when to deliver it."""

    order_no = pw.CharField(max_length=32, unique=True)
    share = pw.ForeignKeyField(Share, backref="orders", on_delete="RESTRICT")
    gift = pw.ForeignKeyField(Gift, backref="orders", on_delete="RESTRICT")
    recipient = pw.ForeignKeyField(User, backref="orders", on_delete="RESTRICT")
    variant = pw.CharField(max_length=64, default="")
    name = pw.CharField(max_length=64)
    phone = pw.CharField(max_length=20)
    region = pw.CharField(max_length=128)
    address_detail = pw.CharField(max_length=256)
    delivery_date = pw.DateField()
    delivery_slot = pw.CharField(max_length=16)
    status = pw.CharField(max_length=16, default="placed")  # placed|shipped|delivered|cancelled
    channel = pw.CharField(max_length=8, default="web")  # web | chat
    created_at = pw.DateTimeField(default=utcnow)
    shipped_at = pw.DateTimeField(null=True)
    carrier = pw.CharField(max_length=32, default="")
    tracking = pw.CharField(max_length=64, default="")
    delivered_at = pw.DateTimeField(null=True)
    cancelled_at = pw.DateTimeField(null=True)
    thanks = pw.TextField(default="")  # the recipient's thank-you note to the giver
    thanked_at = pw.DateTimeField(null=True)
    # The gift the share gave, when the recipient took `gift` instead ([shares] swap); "" if not.
    swapped_from = pw.CharField(max_length=32, default="")

    class Meta:
        indexes = ((("share", "recipient"), True),)

    @property
    def address(self) -> str:
        return f"{self.region}{self.address_detail}"


class ShareVisit(BaseModel):
    """Someone known opened a share's page and has not ordered (yet): one reminder each."""

    share = pw.ForeignKeyField(Share, backref="visits", on_delete="CASCADE")
    openid = pw.CharField(max_length=64)
    first_seen = pw.DateTimeField(default=utcnow)
    reminded_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("share", "openid"), True),)


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


class PayOrder(BaseModel):
    """One attempt to pay for a share: a JSAPI order at WeChat Pay, by its out_trade_no."""

    out_trade_no = pw.CharField(max_length=32, unique=True)
    share = pw.ForeignKeyField(Share, backref="pay_orders", on_delete="RESTRICT")
    payer = pw.CharField(max_length=64)
    amount = pw.IntegerField()  # fen
    status = pw.CharField(max_length=8, default="open", index=True)  # open|paid|closed
    prepay_id = pw.CharField(max_length=64, default="")
    transaction_id = pw.CharField(max_length=32, default="")
    created_at = pw.DateTimeField(default=utcnow)
    time_expire = pw.DateTimeField()  # WeChat Pay takes no payment after it: the hold's end
    paid_at = pw.DateTimeField(null=True)
    closed_at = pw.DateTimeField(null=True)
    checked_at = pw.DateTimeField(null=True)  # last asked of WeChat Pay (reconciliation)


class Refund(BaseModel):
    """Money going back to a giver, once per cause (expired:<share>, cancelled:<order>, …)."""

    cause = pw.CharField(max_length=48, unique=True)
    out_refund_no = pw.CharField(max_length=64, unique=True)
    pay_order = pw.ForeignKeyField(PayOrder, backref="refunds", on_delete="RESTRICT")
    share = pw.ForeignKeyField(Share, backref="refunds", on_delete="RESTRICT")
    units = pw.IntegerField()
    amount = pw.IntegerField()  # fen
    reason = pw.CharField(max_length=16)  # expired|revoked|cancelled|unwon|late|duplicate|swapped
    # pending (not yet accepted) → processing → success | closed (final) | abnormal
    status = pw.CharField(max_length=12, default="pending", index=True)
    refund_id = pw.CharField(max_length=32, default="")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    last_error = pw.TextField(default="")


class CatalogueVersion(BaseModel):
    """One row whose `version` a database trigger bumps on every change to `gift`: caches of
    the catalogue (in every process) compare it instead of reading the gifts again."""

    id = pw.IntegerField(primary_key=True)
    version = pw.BigIntegerField(default=0)


class ApiToken(BaseModel):
    """A cached credential of an outside API (the WeChat access_token), shared by all workers."""

    name = pw.CharField(max_length=32, primary_key=True)
    value = pw.TextField()
    expires_at = pw.DateTimeField()


# -- new ways to give (issue 18) ------------------------------------------------------


class DrawEntry(BaseModel):
    """Someone who joined a draw, once; `via` web (opened the page) or chat; `won` once drawn."""

    share = pw.ForeignKeyField(Share, backref="entries", on_delete="CASCADE")
    openid = pw.CharField(max_length=64)
    via = pw.CharField(max_length=8)
    joined_at = pw.DateTimeField(default=utcnow)
    won = pw.BooleanField(default=False)

    class Meta:
        indexes = ((("share", "openid"), True),)


class MobileCode(BaseModel):
    """A 6-digit code sent by SMS to claim a share outside WeChat; only its HMAC is kept."""

    share = pw.ForeignKeyField(Share, backref="mobile_codes", on_delete="CASCADE")
    phone = pw.CharField(max_length=20)
    ip = pw.CharField(max_length=64)  # the sender's network: an IPv4 address or an IPv6 /64
    code_hash = pw.CharField(max_length=64)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()
    tries = pw.IntegerField(default=0)
    used_at = pw.DateTimeField(null=True)
    # The WeChat OpenID of the browser that entered the code, when it had one: their mobile.
    verified_by = pw.CharField(max_length=64, default="")

    class Meta:
        indexes = (
            (("phone", "created_at"), False),
            (("ip", "created_at"), False),
            (("created_at",), False),
        )


# -- WeChat Pay's platform certificates (issue 23) --------------------------------------


class PlatformCertificate(BaseModel):
    """A WeChat Pay platform certificate, as the last download of `GET /v3/certificates` that
    listed it gave it (decrypted with the APIv3 key): every worker verifies with these rows."""

    serial_no = pw.CharField(max_length=64, primary_key=True)  # upper-case hex
    pem = pw.TextField()
    effective_at = pw.DateTimeField()
    expires_at = pw.DateTimeField()  # the earlier of its 弃用时间 and the certificate's own end
    listed_at = pw.DateTimeField()


class CertificateDownload(BaseModel):
    """The one row (id 1) that paces downloads of the platform certificates across workers:
    when the last was tried, when one last succeeded, and how the last went."""

    id = pw.IntegerField(primary_key=True)
    tried_at = pw.DateTimeField(null=True)
    succeeded_at = pw.DateTimeField(null=True)
    outcome = pw.TextField(default="")


# -- reaching people (issue 25) ---------------------------------------------------------


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


# -- making it personal (issue 28) -------------------------------------------------------


class GreetingMedia(BaseModel):
    """A giver's picture or voice sent at the blessing step: fetched from WeChat in the
    background (bot/outgoing/media_fetch.py), checked, kept under `[media] dir` as `file` (an
    unguessable name), served under /media/ while its share lives (bot/gifting/media.py)."""

    share = pw.ForeignKeyField(Share, backref="greeting_media", on_delete="CASCADE")
    kind = pw.CharField(max_length=8)  # picture | voice
    media_id = pw.CharField(max_length=128)  # WeChat's temporary media (3 days)
    format = pw.CharField(max_length=16, default="")  # a voice's: amr | speex
    words = pw.TextField(default="")  # what WeChat recognised in a voice
    status = pw.CharField(max_length=8, default="pending")  # pending|ready|failed|deleted
    file = pw.CharField(max_length=64, default="", index=True)
    content_type = pw.CharField(max_length=32, default="")
    size = pw.IntegerField(default=0)  # bytes kept
    seconds = pw.FloatField(default=0)  # a voice's length
    reason = pw.CharField(max_length=32, default="")  # why it failed: a Code
    created_at = pw.DateTimeField(default=utcnow)
    done_at = pw.DateTimeField(null=True)  # fetched, or given up

    class Meta:
        indexes = ((("share", "kind"), True),)


ALL_MODELS = [
    User, Gift, Share, Order, ShareVisit, Conversation, InboundMessage, PushNonce, Outbox,
    ApiToken, CatalogueVersion, DrawEntry, MobileCode, PayOrder, Refund, PlatformCertificate,
    CertificateDownload, SubscriptionGrant, GreetingMedia,
]  # fmt: skip
