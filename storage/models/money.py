"""The giver's money: pay orders at WeChat Pay, refunds, and WeChat Pay's platform
certificates with the row that paces their download.
"""

from __future__ import annotations

import peewee as pw

from storage.models.base import BaseModel, utcnow
from storage.models.gifting import Share


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
