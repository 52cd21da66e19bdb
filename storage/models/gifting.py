"""Gifts and their lives: the catalogue, shares, orders, visits, draw entries, the codes
that verify a mobile, and a greeting's picture or voice.
"""

from __future__ import annotations

import peewee as pw

from storage.models.base import BaseModel, JSONField, utcnow
from storage.models.people import User


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


class CatalogueVersion(BaseModel):
    """One row whose `version` a database trigger bumps on every change to `gift`: caches of
    the catalogue (in every process) compare it instead of reading the gifts again."""

    id = pw.IntegerField(primary_key=True)
    version = pw.BigIntegerField(default=0)


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
