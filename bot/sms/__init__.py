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
`sms.webhook_url`), `aliyun` and `tencent` (the official SDKs, in `bot/sms/aliyun.py` and `tencent.py`, whose
`endpoint`/`protocol` can point at a local fake). The SDKs block, so they run
in a worker thread. Vendors know one template each (`template_code` /
`template_id`); `msg.template` is our own name, used by console and webhook.
Every log line and error message shows the phone masked (138****8000).
"""

from __future__ import annotations

import abc
import json
import logging
import re
import sys
from dataclasses import dataclass

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from bot.config import Sms
from bot.forms.person import mask_phone
from bot.sms_kinds import SMS_TEMPLATES as SMS_TEMPLATES  # the senders import it from here

log = logging.getLogger("gift_bot.sms")

CONNECT_TIMEOUT = 5.0  # seconds; a vendor that does not answer is retried later
READ_TIMEOUT = 10.0

# Tencent takes template variables as a list, not a map: this is their order,
# and the order of the {1} {2} {3} placeholders in the approved template.

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
# Limits that will not clear within the outbox's hour or so of retries, and a call the vendor
# will never know: final at once, the vendor's code and message saying why. A day-level limit
# (the number's day, the same text's day, the account's day) counts from the first SMS of a
# rolling 24 hours; minute- and hour-level ones (PhoneNumberThirtySecondLimit,
# PhoneNumberOneHourLimit, DeliveryFrequencyLimit) stay retried.
_FINAL_CODES = {
    "LimitExceeded.PhoneNumberDailyLimit",
    "LimitExceeded.PhoneNumberSameContentDailyLimit",
    "LimitExceeded.AppDailyLimit",
    "LimitExceeded.AppMainlandChinaDailyLimit",
    "LimitExceeded.AppGlobalDailyLimit",
    "LimitExceeded.AppCountryOrRegionDailyLimit",
    "LimitExceeded.DailyLimit",
    "LimitExceeded.AppCountryOrRegionInBlacklist",  # a console setting, not a count
    "LimitExceeded.PhoneNumberCountLimit",
    "InternalError.RestApiInterfaceNotExist",
}
# Aliyun answers every level of its flow control with one code and names the level in the
# message: 触发分钟级流控Permits:1, 触发小时级流控Permits:5, 触发天级流控Permits:10.
_ALIYUN_LIMIT = "isv.BUSINESS_LIMIT_CONTROL"
_DAY_LEVEL = re.compile(r"天级|\bday\b|\bdaily\b", re.IGNORECASE)


@dataclass(frozen=True)
class SmsMessage:
    phone: str  # E.164, "+8613800138000"
    text: str  # full rendered text (console/webhook)
    template: str  # our template name, e.g. "order_placed"
    params: dict[str, str]  # template variables: order_no, gift, time
    key: str  # the outbox row's reference (outbox-<id>): Aliyun OutId / Tencent SessionContext


class SmsError(Exception):
    """A send failed; `retryable` says whether the same message may succeed later."""

    def __init__(self, code: str, message: str, *, retryable: bool):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.retryable = retryable


def vendor_template(msg: SmsMessage, first: str, more: dict[str, str]) -> str:
    """The vendor's template for this message: `template_code`/`template_id` for the order
    SMS, `templates.<name>` for the others; a kind with none configured fails for good."""
    if msg.template == "order_placed":
        return first
    if msg.template in more:
        return more[msg.template]
    raise SmsError(
        "NoTemplate", f"no vendor template configured for {msg.template!r}", retryable=False
    )


def is_retryable_code(code: str, message: str = "") -> bool:
    """Whether a vendor's answer may differ later: throttling and the vendor's own faults,
    except the limits that outlast our retries (the message names Aliyun's level)."""
    if code in _FINAL_CODES or (code == _ALIYUN_LIMIT and _DAY_LEVEL.search(message)):
        return False
    return code in _RETRYABLE_CODES or code.startswith(_RETRYABLE_PREFIXES)


def failure(code: str, message: str, phone: str, retryable: bool | None = None) -> SmsError:
    """An SmsError whose text cannot leak the phone (vendor messages echo URLs and bodies)."""
    if retryable is None:
        retryable = is_retryable_code(code, str(message))
    return SmsError(code, _scrub(str(message), phone), retryable=retryable)


def _scrub(text: str, phone: str) -> str:
    # The number shows up as +86…, 86…, %2B86… or the bare 11 digits; all end alike.
    tail = re.sub(r"\D", "", phone)[-8:]
    if not tail:
        return text
    return re.sub(r"\+?\d*" + tail, mask_phone(phone), text)


class Sender(abc.ABC):
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

    @abc.abstractmethod
    async def _deliver(self, msg: SmsMessage) -> str:
        """Hand the message to the backend; its message id, or SmsError."""


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
            raise failure("NetworkError", repr(exc), msg.phone) from None
        if response.code >= 300:
            # 408 and 429 are "not now", not "never".
            retryable = response.code >= 500 or response.code in (408, 429)
            detail = response.body[:200].decode("utf-8", "replace")
            raise failure(f"HTTP{response.code}", detail, msg.phone, retryable)
        return f"webhook-{msg.key}"


def make_sender(sms: Sms) -> Sender:
    """The sender for `sms.backend` (the config check already vetted its keys)."""
    if sms.backend == "console":
        return ConsoleSender()
    if sms.backend == "webhook":
        return WebhookSender(sms.webhook_url)
    # The vendor SDKs are imported only when chosen: they cost half a second at start-up.
    if sms.backend == "aliyun":
        from bot.sms.aliyun import AliyunSender

        return AliyunSender(sms.aliyun)
    if sms.backend == "tencent":
        from bot.sms.tencent import TencentSender

        return TencentSender(sms.tencent)
    raise ValueError(f"unknown sms backend {sms.backend!r}")
