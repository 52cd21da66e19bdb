"""The merchant's side of WeChat Pay API v3: its keys, the signature of every request, and a
notification's resource opened with the APIv3 key (bot/money/wechatpay.py calls WeChat Pay).

Usage::

    merchant = Merchant.from_config(config)            # keys loaded from [payments.wechatpay]
    merchant.authorization("POST", "/v3/pay/…", body, time.time())   # the Authorization header
    note_id, event_type, resource = merchant.open_notification(raw_body)   # or NotifyRefused
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.config import Config
from bot.config.payments import load_private, load_public
from bot.money.wechatpay_keys import SCHEME

# Answers worth asking again later: WeChat Pay busy or rate limiting, the merchant's balance
# short for a refund (it is topped up), a partial refund too soon after the last one.
RETRYABLE_CODES = frozenset(
    {"SYSTEM_ERROR", "BANK_ERROR", "FREQUENCY_LIMITED", "RATELIMIT_EXCEEDED", "NOT_ENOUGH"}
)


class PayError(Exception):
    """WeChat Pay said no (`status`, `code`), or no answer could be trusted (`status` None)."""

    def __init__(self, status: int | None, code: str, message: str):
        super().__init__(f"WeChat Pay {status or 'no answer'} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.retryable = status is None or status >= 500 or code in RETRYABLE_CODES


class NotifyRefused(Exception):
    """A notification not believed: `status` (400/401) is the answer, `reason` goes to the log."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Merchant:
    """Who we are at WeChat Pay, and whose signature we believe."""

    mchid: str
    appid: str
    api_v3_key: str
    private_key: rsa.RSAPrivateKey
    serial_no: str
    # WeChat Pay's public key and its PUB_KEY_ID_…; None and "" when the merchant verifies with
    # platform certificates (or until the sandbox's stand-in is made)
    public_key: rsa.RSAPublicKey | None
    public_key_id: str
    api_base: str
    notify_url: str
    timeout: float = 5.0

    @classmethod
    def from_config(cls, config: Config, **keys: Any) -> Merchant:
        w = config.payments.wechatpay
        where = "payments.wechatpay"
        if "private_key" not in keys:
            keys["private_key"] = load_private(w.private_key_path, f"{where}.private_key_path",
                                               config.path)  # fmt: skip
            keys["public_key"] = None  # without it, platform certificates (bot/wechatpay_keys.py)
            if w.public_key_path:
                keys["public_key"] = load_public(w.public_key_path, f"{where}.public_key_path",
                                                 config.path)  # fmt: skip
        return cls(
            mchid=w.mchid,
            appid=config.wechat.app_id,
            api_v3_key=w.api_v3_key,
            serial_no=w.cert_serial_no,
            public_key_id=w.public_key_id,
            api_base=w.api_base.rstrip("/"),
            notify_url=f"{config.server.public_url}/pay/notify",
            timeout=w.timeout_seconds,
            **keys,
        )

    # -- our signatures --------------------------------------------------------------------

    def sign(self, message: bytes) -> str:
        signed = self.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signed).decode()

    def authorization(self, method: str, uri: str, body: bytes, now: float) -> str:
        timestamp, nonce = str(int(now)), secrets.token_hex(16)
        message = f"{method}\n{uri}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
        return (
            f'{SCHEME} mchid="{self.mchid}",nonce_str="{nonce}",signature="{self.sign(message)}",'
            f'timestamp="{timestamp}",serial_no="{self.serial_no}"'
        )

    def mismatch(self, transaction: dict, total: int) -> str | None:
        """Why a transaction WeChat Pay vouches for is not our order of `total` fen; None when
        it is."""
        if transaction.get("mchid") != self.mchid:
            return "mchid is not ours"
        if transaction.get("appid") != self.appid:
            return "appid is not ours"
        amount = transaction.get("amount") or {}
        paid = amount.get("total") if isinstance(amount, dict) else amount
        if not isinstance(amount, dict) or paid != total:
            return f"amount {paid!r} is not the order's {total}"
        return None

    # -- theirs ----------------------------------------------------------------------------

    def open_notification(self, body: bytes) -> tuple[str, str, dict]:
        """A notification whose signature checked, decrypted: (its id, event_type, the
        plaintext resource). Raises NotifyRefused(400) for a body that does not open."""
        try:
            envelope = json.loads(body)
            resource = envelope["resource"]
            if resource["algorithm"] != "AEAD_AES_256_GCM":
                raise NotifyRefused(400, f"unknown algorithm {resource['algorithm']!r}")
            plain = AESGCM(self.api_v3_key.encode()).decrypt(
                resource["nonce"].encode(),
                base64.b64decode(resource["ciphertext"], validate=True),
                (resource.get("associated_data") or "").encode(),
            )
            plaintext = json.loads(plain)
            event_type, note_id = str(envelope["event_type"]), str(envelope.get("id", ""))
        except NotifyRefused:
            raise
        except InvalidTag:
            raise NotifyRefused(400, "resource does not decrypt with the APIv3 key") from None
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise NotifyRefused(400, "malformed notification") from None
        if not isinstance(plaintext, dict):
            raise NotifyRefused(400, "malformed resource")
        return note_id, event_type, plaintext
