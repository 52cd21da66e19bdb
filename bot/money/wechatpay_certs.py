"""WeChat Pay's platform certificates: the answer of `GET /v3/certificates` opened with the
APIv3 key, and the rows of them that every worker verifies with (the database is the cache).

Usage::

    certificates = open_download(body, api_v3_key, now)   # [Certificate]; raises Unusable
    keep(certificates, now)          # (a write) they are the list now: upserted, others retired
    stored(now)                      # {serial_no: Certificate} of those not yet expired
    claim_download(now)              # (a write) True for one worker per DOWNLOAD_GAP
    download_done(outcome, now, ok)  # (a write) how it went; `ok` stamps succeeded_at
    last_success()                   # when a download last succeeded, or None

Each certificate comes encrypted (AEAD_AES_256_GCM, the APIv3 key, associated data
"certificate") beside its `serial_no`, `effective_time` and `expire_time`; it must decrypt,
be an X.509 certificate of an RSA key and carry the serial its row names. It is used from
the later of `effective_time` and its own start to the earlier of `expire_time` (WeChat Pay
moves it 24 hours ahead of a switch) and its own end. Sources: pay.weixin.qq.com
wechatpay5_1 (下载平台证书), wechatpay5_0 (平台证书更新指引: a new certificate 10 days before
the old expires, signing from 5 days before), doc/global/v3/zh/4012354540 (弃用时间);
wechatpay-go core/downloader, wechatpay-java core/certificate, wechatpayv3 core.py.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.models import CertificateDownload, PlatformCertificate

ALGORITHM = "AEAD_AES_256_GCM"
DOWNLOAD_GAP = dt.timedelta(seconds=60)  # at most one download a minute, across all workers


class Unusable(Exception):
    """A download that cannot be believed or used; the message says why (for the log)."""


@dataclass(frozen=True)
class Certificate:
    serial_no: str  # upper-case hex, as Wechatpay-Serial names it
    pem: str
    effective_at: dt.datetime  # naive UTC
    expires_at: dt.datetime
    public_key: rsa.RSAPublicKey = field(compare=False, repr=False)

    @classmethod
    def load(cls, serial_no: str, pem: str, effective_at: dt.datetime, expires_at: dt.datetime):
        """One certificate, checked: X.509 PEM, an RSA key, the serial its row names."""
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            raise Unusable(f"certificate {serial_no} is not an X.509 PEM") from None
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Unusable(f"certificate {serial_no} is not of an RSA key")
        if serial_number(serial_no) != cert.serial_number:
            raise Unusable(f"certificate {serial_no} carries serial {cert.serial_number:X}")
        start = cert.not_valid_before_utc.replace(tzinfo=None)
        end = cert.not_valid_after_utc.replace(tzinfo=None)
        return cls(serial_no.upper(), pem, max(effective_at, start), min(expires_at, end), key)

    def usable(self, now: dt.datetime) -> bool:
        return self.effective_at <= now < self.expires_at


def serial_number(text: str) -> int | None:
    """A serial as WeChat Pay writes it (hex, 40 digits today) → its number; None if not hex."""
    if not text or len(text) > 64:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


def open_download(body: bytes, api_v3_key: str, now: dt.datetime) -> list[Certificate]:
    """The certificates of a `/v3/certificates` answer, decrypted and checked; those already
    expired are left out. Raises Unusable: one certificate that fails spoils the answer."""
    try:
        data = json.loads(body)["data"]
        if not isinstance(data, list):
            raise TypeError
        certificates = [_open(item, api_v3_key) for item in data]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Unusable("the answer is not a list of certificates") from None
    if len({c.serial_no for c in certificates}) != len(certificates):
        raise Unusable("a serial is listed twice")
    return [c for c in certificates if c.expires_at > now]


def _open(item: dict, api_v3_key: str) -> Certificate:
    serial_no = str(item["serial_no"])
    sealed = item["encrypt_certificate"]
    if sealed["algorithm"] != ALGORITHM:
        raise Unusable(f"certificate {serial_no}: unknown algorithm {sealed['algorithm']!r}")
    try:
        pem = AESGCM(api_v3_key.encode()).decrypt(
            str(sealed["nonce"]).encode(),
            base64.b64decode(sealed["ciphertext"], validate=True),
            str(sealed.get("associated_data") or "").encode(),
        )
    except (InvalidTag, binascii.Error, ValueError):
        raise Unusable(f"certificate {serial_no} does not decrypt with the APIv3 key") from None
    effective, expire = _utc(item["effective_time"]), _utc(item["expire_time"])
    return Certificate.load(serial_no, pem.decode(errors="replace"), effective, expire)


def _utc(text: str) -> dt.datetime:
    """RFC 3339 with its offset (`2018-06-08T10:34:56+08:00`) → naive UTC."""
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("a time without its offset")
    return when.astimezone(dt.UTC).replace(tzinfo=None)


# -- the rows (each function runs inside the caller's transaction) -------------------------


def stored(now: dt.datetime) -> dict[str, Certificate]:
    rows = PlatformCertificate.select().where(PlatformCertificate.expires_at > now)
    return {
        row.serial_no: Certificate.load(row.serial_no, row.pem, row.effective_at, row.expires_at)
        for row in rows
    }


def keep(certificates: list[Certificate], now: dt.datetime) -> None:
    """A believed download is the list: its certificates kept, the ones it no longer names
    retired (as the SDKs replace their whole set)."""
    serials = [c.serial_no for c in certificates]
    PlatformCertificate.delete().where(PlatformCertificate.serial_no.not_in(serials)).execute()
    for c in certificates:
        row = {"pem": c.pem, "effective_at": c.effective_at, "expires_at": c.expires_at}
        row["listed_at"] = now
        PlatformCertificate.insert(serial_no=c.serial_no, **row).on_conflict(
            conflict_target=[PlatformCertificate.serial_no], update=row
        ).execute()


def claim_download(now: dt.datetime) -> bool:
    """The right to download now, for one worker: none tried within DOWNLOAD_GAP."""
    cutoff = now - DOWNLOAD_GAP
    return bool(
        CertificateDownload.update(tried_at=now)
        .where(
            (CertificateDownload.id == 1)
            & (CertificateDownload.tried_at.is_null() | (CertificateDownload.tried_at <= cutoff))
        )
        .execute()
    )


def download_done(outcome: str, now: dt.datetime, ok: bool) -> None:
    changes = {"outcome": outcome[:500]} | ({"succeeded_at": now} if ok else {})
    CertificateDownload.update(**changes).where(CertificateDownload.id == 1).execute()


def last_success() -> dt.datetime | None:
    row = CertificateDownload.get_or_none(CertificateDownload.id == 1)
    return row.succeeded_at if row else None
