"""Our client of WeChat Pay API v3 (a direct merchant, JSAPI), on Tornado's AsyncHTTPClient:
the documented signing, never a blocking call on the loop.

Usage::

    merchant = Merchant.from_config(config)            # bot/money/merchant.py: the keys
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

import datetime as dt
import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from bot.money.merchant import Merchant, PayError
from bot.money.wechatpay_certs import Unusable
from bot.money.wechatpay_keys import Fetched, PlatformKeys

CERTIFICATES = "/v3/certificates?algorithm_type=RSA"  # the platform certificates' download
BEIJING = dt.timezone(dt.timedelta(hours=8))
USER_AGENT = "gift-bot (WeChat Pay API v3)"
MAX_CLIENTS = 10


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
