"""Send one SMS through the backend named in `[sms]`; only the outbox worker calls this.

Usage::

    sender = make_sender(config.sms)              # once, at worker start-up
    msg = SmsMessage(phone="+8613800138000", text="【礼物】您的订单 A1 已下单…",
                     template="order_placed", key="outbox-42",
                     params={"order_no": "A1", "gift": "玫瑰", "time": "5月20日 09:00-12:00"})
    try:
        message_id = await sender.send(msg)      # the vendor's id, for the outbox row
    except SmsError as exc:
        exc.retryable, exc.in_doubt, exc.code    # try again later? may it have gone anyway?
    if sender.checks:                             # after a send whose answer was lost
        await sender.went(msg.phone, msg.key, since, now)   # do the vendor's records show it?

Backends: `console` (stderr, for `make run`), `webhook` (POST JSON to
`sms.webhook_url`), `aliyun` and `tencent` (the official SDKs, in `bot/outgoing/sms/aliyun.py` and
`tencent.py`, whose `endpoint`/`protocol` can point at a local fake). The SDKs block, so
they run in a worker thread. Vendors know one template each (`template_code` /
`template_id`); `msg.template` is our own name, used by console and webhook. The vendors
keep records of what they sent, by our key (Aliyun's OutId, Tencent's SessionContext):
`went` reads them. Every log line and error message shows the phone masked (138****8000).
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import logging
import sys
from dataclasses import dataclass

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from bot.config import Sms
from bot.forms.person import mask_phone
from bot.outgoing.sms.errors import SmsError, failure, network_failure
from bot.sms_kinds import SMS_TEMPLATES as SMS_TEMPLATES  # the senders import it from here

log = logging.getLogger("gift_bot.sms")

CONNECT_TIMEOUT = 5.0  # seconds; at most, whatever [sms] timeout_seconds says


@dataclass(frozen=True)
class SmsMessage:
    phone: str  # E.164, "+8613800138000"
    text: str  # full rendered text (console/webhook)
    template: str  # our template name, e.g. "order_placed"
    params: dict[str, str]  # template variables: order_no, gift, time
    key: str  # the outbox row's reference (outbox-<id>): Aliyun OutId / Tencent SessionContext


def has_template(sms: Sms, kind: str) -> bool:
    """Whether an SMS of this kind can be sent: console and webhook send any; a vendor needs
    its approved template (`template_code`/`template_id` for the order SMS, else `templates`)."""
    if sms.backend not in ("aliyun", "tencent"):
        return kind in SMS_TEMPLATES
    vendor = getattr(sms, sms.backend)
    if kind == "order_placed":
        return bool(vendor.template_code if sms.backend == "aliyun" else vendor.template_id)
    return kind in vendor.templates


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


class Sender(abc.ABC):
    """One backend. `send` and `went` log the outcome; subclasses implement `_deliver`, and
    `_find` when they can ask (`checks`)."""

    name = "sender"
    checks = False  # whether the backend's records can say if a lost send went

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

    async def went(self, phone: str, key: str, since: dt.datetime, now: dt.datetime) -> bool:
        """Whether the vendor's records show the SMS `key` to `phone`, sent since `since`
        (naive UTC on the bot's clock, as `now`); SmsError when they cannot be read."""
        what = f"sms {self.name} to {mask_phone(phone)} (key={key})"
        try:
            found = await self._find(phone, key, since, now)
        except SmsError as exc:
            log.warning("%s: cannot tell whether it went: %s", what, exc)
            raise
        shown = "show it went" if found else "do not show it"
        log.info("%s in doubt since %sZ: the vendor's records %s", what, since.isoformat(), shown)
        return found

    async def _find(self, phone: str, key: str, since: dt.datetime, now: dt.datetime) -> bool:
        raise NotImplementedError(f"the {self.name} backend keeps no records to ask")


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

    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url, timeout

    async def _deliver(self, msg: SmsMessage) -> str:
        body = {"phone": msg.phone, "text": msg.text, "template": msg.template}
        body |= {"params": msg.params, "key": msg.key}
        request = HTTPRequest(
            self.url,
            method="POST",
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8"},
            connect_timeout=min(CONNECT_TIMEOUT, self.timeout),
            request_timeout=self.timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (HTTPClientError, OSError) as exc:  # timeouts (599), refused, DNS
            # The receiver dedupes on `key`: the webhook has no records to ask.
            raise network_failure(repr(exc), msg.phone) from None
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
        return WebhookSender(sms.webhook_url, sms.timeout_seconds)
    # The vendor SDKs are imported only when chosen: they cost half a second at start-up.
    if sms.backend == "aliyun":
        from bot.outgoing.sms.aliyun import AliyunSender

        return AliyunSender(sms.aliyun, sms.timeout_seconds)
    if sms.backend == "tencent":
        from bot.outgoing.sms.tencent import TencentSender

        sender = TencentSender(sms.tencent, sms.timeout_seconds)
        sender.check_templates()  # Tencent numbers variables: a wrong count would shift them
        return sender
    raise ValueError(f"unknown sms backend {sms.backend!r}")
