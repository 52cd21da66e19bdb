"""Whose signature we believe on WeChat Pay's answers and notifications: its public key
(`Wechatpay-Serial: PUB_KEY_ID_…`, when configured) or one of its platform certificates (any
other serial; the rows of bot/wechatpay_certs.py), as the official SDKs' combined verifier.

Usage::

    keys = PlatformKeys(merchant, db)
    why = await keys.check(headers, raw_body, now, fetch)   # None, or why not (for the log)
    await keys.refresh(fetch, now, due_only=True)           # the sweep: keep them fresh
    keys.accept_serial()                                    # our requests' Wechatpay-Serial

`fetch()` is the client's raw, signed `GET /v3/certificates`. A serial this worker does not
know is looked up in the database (another worker may have downloaded it), then downloaded
once, paced across workers, before it is refused. A download is believed when its
certificates decrypt with the APIv3 key and its answer is signed by a certificate already
known (or the public key); only while none is known (the bootstrap) by a certificate it
brings itself, as wechatpay-php's downloader and wechatpay-apache-httpclient's
auto-updating verifier do. It is then the list: certificates it no longer names are
retired. A signature counts only with `Wechatpay-Signature-Type` WECHATPAY2-SHA256-RSA2048
and a timestamp less than 5 minutes from now (wechatpay-go and wechatpay-java refuse 300 s).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bot.money import wechatpay_certs as certs
from bot.money.wechatpay_certs import Certificate, Unusable
from storage.runner import Runner


class Merchant(Protocol):
    """What the keys need of the merchant (bot/money/wechatpay.py's Merchant)."""

    public_key_id: str
    api_v3_key: str


log = logging.getLogger("gift_bot.payments")

SCHEME = "WECHATPAY2-SHA256-RSA2048"
PUBLIC_KEY_PREFIX = "PUB_KEY_ID_"
WINDOW = 300  # seconds: a timestamp this far from now, or farther, is refused
REFRESH_EVERY = dt.timedelta(hours=12)  # the docs ask for a daily download at least
MAX_TIMESTAMP_DIGITS = 12  # before int(): Python refuses to parse numbers of 4300 digits


@dataclass(frozen=True)
class Fetched:
    """An answer as it came: status, headers, raw body; nothing in it believed yet."""

    status: int
    headers: Any
    body: bytes


Fetch = Callable[[], Awaitable[Fetched]]


@dataclass(frozen=True)
class Signed:
    """The Wechatpay-* headers of an answer or a notification, well-formed and current."""

    timestamp: str
    nonce: str
    signature: str
    serial: str

    def message(self, body: bytes) -> bytes:
        return f"{self.timestamp}\n{self.nonce}\n".encode() + body + b"\n"


def read_signed(headers: Any, now: float) -> Signed | str:
    """The signature's headers, or why they are refused before any key is looked at."""
    timestamp = headers.get("Wechatpay-Timestamp", "")
    nonce = headers.get("Wechatpay-Nonce", "")
    signature = headers.get("Wechatpay-Signature", "")
    serial = headers.get("Wechatpay-Serial", "")
    digits = timestamp.isascii() and timestamp.isdigit()
    if not (digits and len(timestamp) <= MAX_TIMESTAMP_DIGITS and nonce and signature):
        return "Wechatpay-* headers missing or malformed"
    if not serial or len(serial) > 64:
        return "Wechatpay-Serial missing or malformed"
    kind = headers.get("Wechatpay-Signature-Type", "")
    if kind != SCHEME:
        return f"Wechatpay-Signature-Type {kind[:40]!r} is not {SCHEME}"
    if abs(int(now) - int(timestamp)) >= WINDOW:  # whole seconds, as wechatpay-go counts
        return "timestamp 5 minutes or more from now (a replay, or a clock adrift)"
    return Signed(timestamp, nonce, signature, serial)


def verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    """RSA-SHA256, PKCS#1 v1.5, base64: WeChat Pay's signature over `message`."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def utc(now: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, dt.UTC).replace(tzinfo=None)


class PlatformKeys:
    """WeChat Pay's keys as this worker knows them: the merchant's configured public key, and
    the platform certificates of the database's rows."""

    def __init__(self, merchant: Merchant, db: Runner):
        self.merchant, self.db = merchant, db
        self._certificates: dict[str, Certificate] = {}  # this worker's view of the rows

    def accept_serial(self) -> str:
        """What our requests send as Wechatpay-Serial (the key or certificate we verify with,
        so that WeChat Pay signs with it): the public key's id, else the newest certificate."""
        if self.merchant.public_key_id:
            return self.merchant.public_key_id
        newest = max(self._certificates.values(), key=lambda c: c.expires_at, default=None)
        return newest.serial_no if newest else ""

    async def check(self, headers: Any, body: bytes, now: float, fetch: Fetch) -> str | None:
        """Why an answer or notification is not WeChat Pay's own, current one; None if it is."""
        signed = read_signed(headers, now)
        if isinstance(signed, str):
            return signed
        key = await self._key(signed.serial, now, fetch)
        if isinstance(key, str):
            return key
        if not verify(key, signed.message(body), signed.signature):
            return "signature does not verify"
        return None

    async def _key(self, serial: str, now: float, fetch: Fetch) -> rsa.RSAPublicKey | str:
        m = self.merchant
        if serial.startswith(PUBLIC_KEY_PREFIX):
            if not m.public_key_id:
                return "signed with WeChat Pay's public key, which is not configured"
            if serial != m.public_key_id or m.public_key is None:
                return "signed with a key that is not WeChat Pay's configured public key"
            return m.public_key
        when = utc(now)
        found = await self._certificate(serial, when)
        if found is None and await self.refresh(fetch, now):
            found = self._certificates.get(serial.upper())
        if found is None:
            return f"signed with certificate {serial[:64]!r}, not one WeChat Pay lists"
        if not found.usable(when):
            return f"signed with certificate {found.serial_no}, not in use now (expired?)"
        return found.public_key

    async def _certificate(self, serial: str, when: dt.datetime) -> Certificate | None:
        """From this worker's view, else from the rows (another worker may have downloaded)."""
        serial = serial.upper()
        if serial not in self._certificates:
            self._certificates = await self.db.run(certs.stored, when)
        return self._certificates.get(serial)

    # -- downloads ---------------------------------------------------------------------------

    async def refresh(self, fetch: Fetch, now: float, *, due_only: bool = False) -> bool:
        """Download the platform certificates, unless another worker did within a minute (or,
        `due_only`, unless none is due); True when a believed list was kept."""
        when = utc(now)
        if due_only and not await self._due(when):
            return False
        if not await self.db.write(certs.claim_download, when):
            return False
        try:
            answer = await fetch()
            certificates = await self._believe(answer, now)
        except Unusable as refused:
            await self.db.write(certs.download_done, str(refused), when, False)
            log.warning("platform certificates not downloaded", extra={"why": str(refused)})
            return False
        outcome = "kept " + ", ".join(c.serial_no for c in certificates)
        await self.db.write(certs.download_done, outcome, when, True)
        log.info("platform certificates downloaded", extra={"outcome": outcome})
        return True

    async def _due(self, when: dt.datetime) -> bool:
        """The sweep's question, which also refreshes this worker's view of the rows."""
        self._certificates = await self.db.run(certs.stored, when)
        usable = [c for c in self._certificates.values() if c.usable(when)]
        if self.merchant.public_key_id and not usable:
            return False  # public-key mode, no switch-over under way: nothing to keep fresh
        last = await self.db.run(certs.last_success)
        return not usable or last is None or when - last >= REFRESH_EVERY

    async def _believe(self, answer: Fetched, now: float) -> list[Certificate]:
        """The certificates of a download, once its answer is shown to be WeChat Pay's."""
        if answer.status != 200:
            raise Unusable(
                f"answered {answer.status}: {answer.body[:200].decode(errors='replace')}"
            )
        when = utc(now)
        listed = certs.open_download(answer.body, self.merchant.api_v3_key, when)
        if not listed:
            raise Unusable("no certificate in use listed")
        known = await self.db.run(certs.stored, when)
        trusted = {s: c for s, c in known.items() if c.usable(when)}
        bootstrap = not trusted
        if bootstrap:  # nothing known to check with: the answer must be signed by what it brings
            trusted = {c.serial_no: c for c in listed}
        signed = read_signed(answer.headers, now)
        if isinstance(signed, str):
            raise Unusable(signed)
        m = self.merchant
        if m.public_key_id and signed.serial == m.public_key_id and m.public_key is not None:
            key = m.public_key
        elif signed.serial.upper() in trusted:
            key = trusted[signed.serial.upper()].public_key
        else:
            raise Unusable(f"signed by {signed.serial[:64]!r}, not a certificate known "
                           f"{'in the answer' if bootstrap else 'before it'}")  # fmt: skip
        if not verify(key, signed.message(answer.body), signed.signature):
            raise Unusable("the answer's signature does not verify")
        await self.db.write(certs.keep, listed, when)
        self._certificates = {c.serial_no: c for c in listed}
        return listed
