"""Send one SMS through the backend named in `[sms]`; only the outbox worker calls this.

Usage::

    sender = make_sender(config.sms)              # once, at worker start-up
    msg = SmsMessage(phone="+8613800138000", text="【礼物】您的订单 A1 已下单…",
                     template="order_placed", key="outbox-42",
                     params={"order_no": "A1", "gift": "玫瑰", "time": "5月20日 09:00-12:00"})
    try:
        message_id = await sender.send(msg)      # the vendor's id, for the outbox row
    except SmsError as exc:
        exc.retryable, exc.code                  # try again later, or give up for good

Backends: `console` (stderr, for `make run`), `webhook` (POST JSON to
`sms.webhook_url`), `aliyun` and `tencent` (the official SDKs, whose
`endpoint`/`protocol` can point at a local fake). The SDKs block, so they run
in a worker thread. Vendors know one template each (`template_code` /
`template_id`); `msg.template` is our own name, used by console and webhook.
Every log line and error message shows the phone masked (138****8000).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from dataclasses import dataclass

from alibabacloud_dysmsapi20170525 import models as aliyun_models
from alibabacloud_dysmsapi20170525.client import Client as AliyunClient
from alibabacloud_tea_openapi import models as aliyun_openapi
from darabonba.exceptions import ResponseException, RetryError, UnretryableException
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as tencent_models
from tencentcloud.sms.v20210111.sms_client import SmsClient
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from bot.config import Aliyun, Sms, Tencent
from bot.forms.person import mask_phone

log = logging.getLogger("gift_bot.sms")

CONNECT_TIMEOUT = 5.0  # seconds; a vendor that does not answer is retried later
READ_TIMEOUT = 10.0

# Tencent takes template variables as a list, not a map: this is their order,
# and the order of the {1} {2} {3} placeholders in the approved template.
TENCENT_PARAM_ORDER = ("order_no", "gift", "time")

# Codes worth another try later: throttling and the vendor's own faults.
# Everything else a vendor answers (bad number, sign, template, params, auth,
# blacklist, balance) fails the same way however often we ask.
_RETRYABLE_CODES = {
    "isv.BUSINESS_LIMIT_CONTROL",
    "isp.SYSTEM_ERROR",
    "Throttling",
    "ServiceUnavailable",
    "InternalError",
    "RequestLimitExceeded",
    "NetworkError",
    "BadResponse",
    "ClientNetworkError",  # Tencent SDK: refused, reset, timed out
    "ServerNetworkError",  # Tencent SDK: an HTTP status other than 200
    "JSONDecodeError",  # Tencent SDK: an answer that is not JSON
}
_RETRYABLE_PREFIXES = ("LimitExceeded.", "InternalError.", "Throttling.")


@dataclass(frozen=True)
class SmsMessage:
    phone: str  # E.164, "+8613800138000"
    text: str  # full rendered text (console/webhook)
    template: str  # our template name, e.g. "order_placed"
    params: dict[str, str]  # template variables: order_no, gift, time
    key: str  # idempotency key, passed as Aliyun OutId / Tencent SessionContext


class SmsError(Exception):
    """A send failed; `retryable` says whether the same message may succeed later."""

    def __init__(self, code: str, message: str, *, retryable: bool):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.retryable = retryable


def is_retryable_code(code: str) -> bool:
    return code in _RETRYABLE_CODES or code.startswith(_RETRYABLE_PREFIXES)


def _error(code: str, message: str, phone: str, retryable: bool | None = None) -> SmsError:
    """An SmsError whose text cannot leak the phone (vendor messages echo URLs and bodies)."""
    if retryable is None:
        retryable = is_retryable_code(code)
    return SmsError(code, _scrub(str(message), phone), retryable=retryable)


def _scrub(text: str, phone: str) -> str:
    # The number shows up as +86…, 86…, %2B86… or the bare 11 digits; all end alike.
    tail = re.sub(r"\D", "", phone)[-8:]
    if not tail:
        return text
    return re.sub(r"\+?\d*" + tail, mask_phone(phone), text)


class Sender:
    """One backend. `send` logs the outcome; subclasses implement `_deliver`."""

    name = "sender"

    async def send(self, msg: SmsMessage) -> str:
        what = f"sms {self.name} to {mask_phone(msg.phone)} (key={msg.key})"
        try:
            message_id = await self._deliver(msg)
        except SmsError as exc:
            log.warning("%s failed, retryable=%s: %s", what, exc.retryable, exc)
            raise
        log.info("%s sent, id=%s", what, message_id)
        return message_id

    async def _deliver(self, msg: SmsMessage) -> str:
        raise NotImplementedError


class ConsoleSender(Sender):
    """Sends nothing: shows the SMS on stderr, where `make run` shows its output."""

    name = "console"

    async def _deliver(self, msg: SmsMessage) -> str:
        print(_console_block(msg), file=sys.stderr, flush=True)
        return f"console-{msg.key}"


def _console_block(msg: SmsMessage) -> str:
    rule = "─" * 48
    return "\n".join(
        [
            f"┌{rule} SMS (console backend, not sent)",
            f"│ to:       {mask_phone(msg.phone)}",
            f"│ template: {msg.template}  params: {json.dumps(msg.params, ensure_ascii=False)}",
            f"│ key:      {msg.key}",
            *(f"│ {line}" for line in msg.text.splitlines() or [""]),
            f"└{rule}",
        ]
    )


class WebhookSender(Sender):
    """POSTs the message as JSON; any 2xx means sent."""

    name = "webhook"

    def __init__(self, url: str):
        self.url = url

    async def _deliver(self, msg: SmsMessage) -> str:
        body = {"phone": msg.phone, "text": msg.text, "template": msg.template}
        body |= {"params": msg.params, "key": msg.key}
        request = HTTPRequest(
            self.url,
            method="POST",
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8"},
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=READ_TIMEOUT,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (HTTPClientError, OSError) as exc:  # timeouts (599), refused, DNS
            raise _error("NetworkError", repr(exc), msg.phone) from None
        if response.code >= 300:
            # 408 and 429 are "not now", not "never".
            retryable = response.code >= 500 or response.code in (408, 429)
            detail = response.body[:200].decode("utf-8", "replace")
            raise _error(f"HTTP{response.code}", detail, msg.phone, retryable)
        return f"webhook-{msg.key}"


class AliyunSender(Sender):
    """Aliyun dysmsapi SendSms through the official SDK (ACS3-HMAC-SHA256 signing)."""

    name = "aliyun"

    def __init__(self, cfg: Aliyun):
        self.cfg = cfg
        self._client = AliyunClient(
            aliyun_openapi.Config(
                access_key_id=cfg.access_key_id,
                access_key_secret=cfg.access_key_secret,
                endpoint=cfg.endpoint,
                protocol=cfg.protocol,
                connect_timeout=int(CONNECT_TIMEOUT * 1000),  # milliseconds
                read_timeout=int(READ_TIMEOUT * 1000),
            )
        )

    async def _deliver(self, msg: SmsMessage) -> str:
        return await asyncio.to_thread(self._send_blocking, msg)

    def _send_blocking(self, msg: SmsMessage) -> str:
        request = aliyun_models.SendSmsRequest(
            # "86138…" without "+": Aliyun takes it for mainland and abroad alike.
            phone_numbers=msg.phone.removeprefix("+"),
            sign_name=self.cfg.sign_name,
            template_code=self.cfg.template_code,
            template_param=json.dumps(
                {k: str(v) for k, v in msg.params.items()}, ensure_ascii=False
            ),  # numbers would be refused with isv.INVALID_JSON_PARAM
            out_id=msg.key,
        )
        try:
            body = self._client.send_sms(request).body
        except Exception as exc:  # the SDK raises many unrelated types
            raise _aliyun_error(exc, msg.phone) from None
        if body.code != "OK":  # business errors come back as HTTP 200
            raise _error(body.code or "BadResponse", body.message or "", msg.phone)
        return body.biz_id or body.request_id


def _aliyun_error(exc: Exception, phone: str) -> SmsError:
    if isinstance(exc, ResponseException):  # the vendor answered HTTP 4xx/5xx
        code = str(exc.code or f"HTTP{exc.status_code}")
        retryable = (exc.status_code or 0) >= 500 or exc.retry_after is not None
        return _error(code, exc.message, phone, retryable or is_retryable_code(code))
    if isinstance(exc, UnretryableException):  # only the SDK's *own* retries are over
        inner = exc.inner_exception
        if isinstance(inner, RetryError):  # refused, reset, timed out
            return _error("NetworkError", inner.message, phone)
        # An answer we cannot parse: a proxy's HTML error page, most likely.
        return _error("BadResponse", repr(inner), phone)
    return _error(type(exc).__name__, str(exc), phone, retryable=False)


class TencentSender(Sender):
    """Tencent Cloud SMS SendSms (2021-01-11) through the official SDK (TC3-HMAC-SHA256)."""

    name = "tencent"

    def __init__(self, cfg: Tencent):
        self.cfg = cfg
        # One timeout for connect and read alike; the SDK default is 60 s.
        http = HttpProfile(endpoint=cfg.endpoint, protocol=cfg.protocol, reqTimeout=READ_TIMEOUT)
        self._client = SmsClient(
            Credential(cfg.secret_id, cfg.secret_key),
            cfg.region,
            ClientProfile(httpProfile=http),
        )

    async def _deliver(self, msg: SmsMessage) -> str:
        return await asyncio.to_thread(self._send_blocking, msg)

    def _send_blocking(self, msg: SmsMessage) -> str:
        request = tencent_models.SendSmsRequest()
        request.SmsSdkAppId = self.cfg.sdk_app_id
        request.SignName = self.cfg.sign_name
        request.TemplateId = self.cfg.template_id
        request.TemplateParamSet = tencent_params(msg)
        request.PhoneNumberSet = [msg.phone]
        request.SessionContext = msg.key
        try:
            response = self._client.SendSms(request)
        except TencentCloudSDKException as exc:
            raise _error(exc.code or "BadResponse", exc.message or "", msg.phone) from None
        if not response.SendStatusSet:
            raise _error(
                "BadResponse", f"no SendStatusSet (request {response.RequestId})", msg.phone
            )
        status = response.SendStatusSet[0]
        if status.Code != "Ok":  # per-number failures only show here, not as Error
            raise _error(status.Code or "BadResponse", status.Message or "", msg.phone)
        return status.SerialNo or response.RequestId


def tencent_params(msg: SmsMessage) -> list[str]:
    """The template variables as Tencent's ordered list (see TENCENT_PARAM_ORDER)."""
    unknown = sorted(set(msg.params) - set(TENCENT_PARAM_ORDER))
    if unknown:
        raise SmsError("UnknownParams", f"no Tencent position for {unknown}", retryable=False)
    return [str(msg.params[k]) for k in TENCENT_PARAM_ORDER if k in msg.params]


def make_sender(sms: Sms) -> Sender:
    """The sender for `sms.backend` (the config check already vetted its keys)."""
    if sms.backend == "console":
        return ConsoleSender()
    if sms.backend == "webhook":
        return WebhookSender(sms.webhook_url)
    if sms.backend == "aliyun":
        return AliyunSender(sms.aliyun)
    if sms.backend == "tencent":
        return TencentSender(sms.tencent)
    raise ValueError(f"unknown sms backend {sms.backend!r}")
