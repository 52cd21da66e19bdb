"""Our client of WeChat Pay API v3 (a direct merchant, JSAPI), on Tornado's AsyncHTTPClient:
the documented signing, never a blocking call on the loop.

Usage::

    merchant = Merchant.from_config(config)            # keys loaded from [payments.wechatpay]
    pay = WeChatPayClient(merchant, PlatformKeys(merchant, db), clock=lambda: time.time())
    prepay_id = await pay.jsapi("T…", "明前龙井礼盒 ×2", 33600, "o_giver", time_expire)
    bridge = pay.bridge(prepay_id)                     # what WeixinJSBridge's getBrandWCPayRequest takes
    transaction = await pay.query("T…")                # raises PayError(404, "ORDER_NOT_EXIST")
    await pay.close_order("T…"); await pay.refund("T…", "R…", refund=16800, total=33600)
    why = await pay.check(headers, raw_body)           # a notification: None when WeChat Pay's own
    note_id, event_type, resource = merchant.open_notification(raw_body)   # or NotifyRefused
    await pay.refresh_certificates(due_only=True)      # the sweep: platform certificates fresh

Every request is signed (`WECHATPAY2-SHA256-RSA2048`, RSA-SHA256 over
`METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n` with the merchant's key); every 2xx answer
and every notification is checked (bot/wechatpay_keys.py: WeChat Pay's public key or its
platform certificates, a timestamp less than 5 minutes from now) before anything in it is
believed. The sources are `../shared/WECHAT.md` §12 and pay.weixin.qq.com's v3 pages;
`handlers/standins/wechatpay*.py` plays the other side.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from bot.config import Config
from bot.config.payments import load_private, load_public
from bot.money.wechatpay_certs import Unusable
from bot.money.wechatpay_keys import SCHEME, Fetched, PlatformKeys

CERTIFICATES = "/v3/certificates?algorithm_type=RSA"  # the platform certificates' download
BEIJING = dt.timezone(dt.timedelta(hours=8))
USER_AGENT = "gift-bot (WeChat Pay API v3)"
MAX_CLIENTS = 10
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


class WeChatPayClient:
    """The calls the bot makes; safe to share between tasks of one event loop."""

    def __init__(
        self, merchant: Merchant, keys: PlatformKeys, clock: Callable[[], float] = time.time
    ):
        self.merchant, self.keys, self.clock = merchant, keys, clock
        self._client: AsyncHTTPClient | None = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    async def jsapi(
        self, out_trade_no: str, description: str, total: int, openid: str, expire: dt.datetime
    ) -> str:
        """A JSAPI order; its prepay_id. `expire` (naive UTC): no payment after it."""
        m = self.merchant
        body = {
            "appid": m.appid,
            "mchid": m.mchid,
            "description": three_bytes(description)[:127],
            "out_trade_no": out_trade_no,
            "time_expire": rfc3339(expire),
            "notify_url": m.notify_url,
            "amount": {"total": total, "currency": "CNY"},
            "payer": {"openid": openid},
        }
        answer = await self.call("POST", "/v3/pay/transactions/jsapi", body)
        return answer["prepay_id"]

    async def query(self, out_trade_no: str) -> dict:
        path = (
            f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no)}?mchid={self.merchant.mchid}"
        )
        return await self.call("GET", path)

    async def close_order(self, out_trade_no: str) -> None:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no)}/close"
        await self.call("POST", path, {"mchid": self.merchant.mchid})

    async def refund(
        self, out_trade_no: str, out_refund_no: str, refund: int, total: int, reason: str = ""
    ) -> dict:
        body: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "notify_url": self.merchant.notify_url,
            "amount": {"refund": refund, "total": total, "currency": "CNY"},
        }
        if reason:
            body["reason"] = three_bytes(reason)[:80]
        return await self.call("POST", "/v3/refund/domestic/refunds", body)

    async def query_refund(self, out_refund_no: str) -> dict:
        return await self.call("GET", f"/v3/refund/domestic/refunds/{quote(out_refund_no)}")

    def bridge(self, prepay_id: str) -> dict[str, str]:
        """The arguments of `WeixinJSBridge.invoke('getBrandWCPayRequest', …)`, paySign made."""
        m = self.merchant
        timestamp, nonce = str(int(self.clock())), secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        pay_sign = m.sign(f"{m.appid}\n{timestamp}\n{nonce}\n{package}\n".encode())
        return {
            "appId": m.appid,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": pay_sign,
        }

    async def check(self, headers: Any, body: bytes) -> str | None:
        """Why an answer or a notification is not WeChat Pay's own, current one; None if it is
        (a certificate not known yet is downloaded first, once, paced across workers)."""
        return await self.keys.check(headers, body, self.clock(), self._certificates)

    async def refresh_certificates(self, *, due_only: bool = False) -> bool:
        """Download the platform certificates now (or, `due_only`, when due); True if kept."""
        return await self.keys.refresh(self._certificates, self.clock(), due_only=due_only)

    async def _certificates(self) -> Fetched:
        try:
            return await self.fetch("GET", CERTIFICATES)
        except PayError as exc:
            raise Unusable(str(exc)) from None

    async def call(self, method: str, uri: str, body: dict | None = None) -> dict:
        """One signed call; the answer's JSON ({} for 204) once its signature checks."""
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body else b""
        response = await self.fetch(method, uri, raw)
        if response.status >= 300:
            try:
                error = json.loads(response.body)
                code, message = str(error.get("code", "")), str(error.get("message", ""))
            except (ValueError, AttributeError):
                code, message = "UNKNOWN", response.body[:200].decode(errors="replace")
            raise PayError(response.status, code, message)
        why = await self.check(response.headers, response.body)
        if why:
            raise PayError(None, "ANSWER_NOT_TRUSTED", why)
        try:
            return json.loads(response.body) if response.body else {}
        except ValueError:
            text = response.body[:200].decode(errors="replace")
            raise PayError(None, "ANSWER_NOT_JSON", text) from None

    async def fetch(self, method: str, uri: str, raw: bytes = b"") -> Fetched:
        """One signed request; its answer as it came (raises PayError when none came)."""
        m = self.merchant
        headers = {
            "Authorization": m.authorization(method, uri, raw, self.clock()),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if serial := self.keys.accept_serial():
            headers["Wechatpay-Serial"] = serial
        if method == "POST":
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            m.api_base + uri,
            method=method,
            headers=headers,
            body=raw if method == "POST" else None,
            connect_timeout=m.timeout,
            request_timeout=m.timeout,
        )
        try:
            response = await self._http().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:  # refused, reset, DNS, TLS, timeout
            raise PayError(None, "NETWORK", str(exc)) from None
        if response.code == 599:
            raise PayError(None, "NETWORK", str(response.error))
        return Fetched(response.code, response.headers, response.body or b"")

    def _http(self) -> AsyncHTTPClient:
        if self._client is None:
            self._client = AsyncHTTPClient(force_instance=True, max_clients=MAX_CLIENTS)
        return self._client


def three_bytes(text: str) -> str:
    """WeChat Pay refuses characters of four bytes in UTF-8 (emoji): leave them out."""
    return "".join(c for c in text if ord(c) <= 0xFFFF)


def rfc3339(when: dt.datetime) -> str:
    """Naive UTC → `2026-12-02T22:15:00+08:00`, as WeChat Pay writes times."""
    return when.replace(tzinfo=dt.UTC, microsecond=0).astimezone(BEIJING).isoformat()
