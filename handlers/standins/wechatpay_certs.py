"""Who signs for the WeChat Pay stand-in: its public key (`PUB_KEY_ID_…`), its platform
certificates (X.509, each with an RSA key of its own), or both during a merchant's switch
from certificates to the public key; and the list `GET /v3/certificates` answers.

Usage (a mixin of WeChatPayStandIn, whose `verification` decides)::

    standin.verification            # "public_key" | "certificates" | "both"
    standin.listing(query)          # /v3/certificates: {"data": [...]} or raises Refusal
    serial = standin.issue_certificate()   # a new certificate, listed, not signing yet
    standin.use_certificate(serial)        # signing with it; the others retire in 24 hours
    standin.rotate_certificate()           # both at once
    standin.retire_certificate(serial)     # no longer listed
    standin.sign_next("notification", signer="public_key")   # or a serial; signature_type=...
    standin.notification_signer            # (key, serial) the next notification is signed with

Which key signs: in "public_key" mode the public key; in "certificates" mode the certificate
in use; in "both" (WeChat Pay's gray switch) an answer is signed by the public key when the
request's Wechatpay-Serial names it, else by the certificate, and notifications by the
certificate until `sign_next` moves one.

Sources: pay.weixin.qq.com wechatpay5_1 and doc/global/v3/zh/4012354540 (the list: serial_no,
effective_time, expire_time, encrypt_certificate {algorithm AEAD_AES_256_GCM, nonce,
associated_data "certificate", ciphertext}; 弃用时间 moved 24 hours before a switch;
algorithm_type RSA (default), SM2 or ALL); wechatpay5_0 (a new certificate 10 days before
the old expires; new serials in Wechatpay-Serial); doc/v3/merchant/4012154180 and the gray
switch's two ratios (answers follow the request's Wechatpay-Serial, notifications their own).
The certificates name Tenpay.com as the real ones do (wechatpay-java's test download
decrypts to `CN=Tenpay.com sign, OU=Tenpay.com CA Center`), issued by the stand-in's key.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from handlers.standins.wechatpay_wire import SCHEME, Refusal, rfc3339, seal

VERIFICATIONS = ("public_key", "certificates", "both")
TARGETS = ("answer", "notification")
FIVE_YEARS = 5 * 365
NOT_FOUND = "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥。"  # measured
SUBJECT = [("C", "CN"), ("L", "ShenZhen"), ("O", "Tenpay.com"), ("OU", "Tenpay.com CA Center")]
OIDS = {"C": NameOID.COUNTRY_NAME, "L": NameOID.LOCALITY_NAME, "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME}  # fmt: skip


@dataclass
class IssuedCertificate:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    effective: float  # unix seconds
    expire: float  # its 弃用时间: the certificate's end, or 24 hours after a switch

    @property
    def serial_no(self) -> str:
        return f"{self.certificate.serial_number:040X}"

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def issue(
    issuer_key: rsa.RSAPrivateKey, now: float, days: int = FIVE_YEARS, key=None
) -> IssuedCertificate:
    """A platform certificate of a new RSA key (or `key`), valid from now for `days`."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = dt.datetime.fromtimestamp(int(now), dt.UTC)
    end = start + dt.timedelta(days=days)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(SUBJECT + [("CN", "Tenpay.com sign")]))
        .issuer_name(_name(SUBJECT + [("CN", "Tenpay.com Root CA")]))
        .public_key(key.public_key())
        .serial_number(secrets.randbits(159) | 1 << 156)  # 40 hex digits, as WeChat Pay's
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(issuer_key, hashes.SHA256())
    )
    return IssuedCertificate(key, certificate, start.timestamp(), end.timestamp())


def _name(parts: list[tuple[str, str]]) -> x509.Name:
    return x509.Name([x509.NameAttribute(OIDS[kind], value) for kind, value in parts])


@dataclass
class _Next:
    signer: str | None = None  # "public_key" or a certificate's serial
    signature_type: str = SCHEME


class Signing:
    """The signing side of WeChatPayStandIn (a mixin: its lock, clock and keys live there)."""

    def _init_signing(self, verification: str, certificate_key) -> None:
        if verification not in VERIFICATIONS:
            raise ValueError(f"verification is one of {VERIFICATIONS}, not {verification!r}")
        self.verification = verification
        self.certificates: list[IssuedCertificate] = []
        self._in_use: IssuedCertificate | None = None
        self._next: dict[str, _Next] = {}
        self._asked = ""  # the Wechatpay-Serial of the request being answered
        if verification != "public_key":
            # the merchant's certificate since yesterday, by the wall clock: the stand-in's own
            # clock may not run yet while it is made (it is often the bot's, made after it)
            first = issue(self.platform_key, time.time() - 86400, key=certificate_key)
            self.certificates.append(first)
            self._in_use = first
        if verification == "certificates":
            self.public_key_id = None  # this merchant never had one

    # -- controls ------------------------------------------------------------------------

    def issue_certificate(self, days: int = FIVE_YEARS) -> str:
        """A new platform certificate, listed from now on; WeChat Pay issues one 10 days
        before the one in use expires, and signs with it later (use_certificate)."""
        with self._lock:
            made = issue(self.platform_key, self.clock(), days)
            self.certificates.append(made)
            return made.serial_no

    def use_certificate(self, serial: str) -> None:
        """Sign with this certificate from now on; the others' 弃用时间 come within 24 hours."""
        with self._lock:
            chosen = self._listed(serial)
            soon = self.clock() + 86400
            for other in self.certificates:
                if other is not chosen:
                    other.expire = min(other.expire, soon)
            self._in_use = chosen

    def rotate_certificate(self) -> str:
        serial = self.issue_certificate()
        self.use_certificate(serial)
        return serial

    def retire_certificate(self, serial: str) -> None:
        with self._lock:
            self.certificates.remove(self._listed(serial))

    def sign_next(
        self, target: str, signer: str | None = None, signature_type: str = SCHEME
    ) -> None:
        """The next answer or notification is signed by `signer` ("public_key" or a listed
        certificate's serial; None: as usual), and says `signature_type` it is."""
        if target not in TARGETS:
            raise ValueError(f"sign_next('answer' | 'notification'), not {target!r}")
        if signer == "public_key" and self.public_key_id is None:
            raise ValueError("this merchant has no public key: it verifies with certificates")
        if signer not in (None, "public_key"):
            self._listed(signer)
        with self._lock:
            self._next[target] = _Next(signer, signature_type)

    @property
    def signing_serial(self) -> str | None:
        """The certificate in use, if this merchant has certificates."""
        return self._in_use.serial_no if self._in_use else None

    @property
    def notification_signer(self) -> tuple[rsa.RSAPrivateKey, str]:
        """What the next notification is signed with, unless sign_next says otherwise."""
        return self._identity("public_key" if self.verification == "public_key" else None)

    # -- what the API side asks ------------------------------------------------------------

    def listing(self, query: dict) -> dict:
        """The answer of GET /v3/certificates: every listed certificate not yet retired."""
        kind = (query.get("algorithm_type") or ["RSA"])[0]
        if kind not in ("RSA", "SM2", "ALL"):
            raise Refusal(400, "PARAM_ERROR", "algorithm_type须为RSA、SM2或ALL")
        if not self.certificates:
            raise Refusal(404, "RESOURCE_NOT_EXISTS", NOT_FOUND)
        if kind == "SM2":  # the stand-in's certificates are all RSA ones
            return {"data": []}
        now = self.clock()
        return {"data": [
            {"serial_no": c.serial_no, "effective_time": rfc3339(c.effective),
             "expire_time": rfc3339(c.expire),
             "encrypt_certificate": seal(self.api_v3_key, c.pem, "certificate")}
            for c in self.certificates if c.expire > now
        ]}  # fmt: skip

    def _signature(self, target: str, asked: str = "") -> tuple[rsa.RSAPrivateKey, str, str]:
        """(key, serial, signature type) of the next answer (to a request whose
        Wechatpay-Serial was `asked`) or notification."""
        nxt = self._next.pop(target, None) or _Next()
        choice = nxt.signer
        if choice is None and self.verification == "public_key":
            choice = "public_key"
        elif choice is None and self.verification == "both" and target == "answer":
            choice = "public_key" if asked == self.public_key_id else None
        key, serial = self._identity(choice)
        return key, serial, nxt.signature_type

    def _identity(self, choice: str | None) -> tuple[rsa.RSAPrivateKey, str]:
        if choice == "public_key":
            return self.platform_key, self.public_key_id
        chosen = self._listed(choice) if choice else self._in_use
        return chosen.key, chosen.serial_no

    def _listed(self, serial: str) -> IssuedCertificate:
        for c in self.certificates:
            if c.serial_no == serial:
                return c
        raise ValueError(f"no certificate {serial!r} is listed")
