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

import json
import logging
import sys

from bot.config import Sms
from bot.forms.person import mask_phone
from bot.outgoing.http import Http, Unanswered, Unreached
from bot.outgoing.sms.base import (
    CONNECT_TIMEOUT as CONNECT_TIMEOUT,
)
from bot.outgoing.sms.base import (
    SMS_TEMPLATES as SMS_TEMPLATES,
)
from bot.outgoing.sms.base import (
    Sender as Sender,
)
from bot.outgoing.sms.base import (
    SmsMessage as SmsMessage,
)
from bot.outgoing.sms.base import (
    vendor_template as vendor_template,
)
from bot.outgoing.sms.errors import SmsError as SmsError
from bot.outgoing.sms.errors import failure, network_failure

log = logging.getLogger("gift_bot.sms")


def has_template(sms: Sms, kind: str) -> bool:
    """Whether an SMS of this kind can be sent: console and webhook send any; a vendor needs
    its approved template (`template_code`/`template_id` for the order SMS, else `templates`)."""
    if sms.backend not in ("aliyun", "tencent"):
        return kind in SMS_TEMPLATES
    vendor = getattr(sms, sms.backend)
    if kind == "order_placed":
        return bool(vendor.template_code if sms.backend == "aliyun" else vendor.template_id)
    return kind in vendor.templates


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
        self.http = Http(connect_timeout=min(CONNECT_TIMEOUT, timeout), timeout=timeout)

    async def _deliver(self, msg: SmsMessage) -> str:
        body = {"phone": msg.phone, "text": msg.text, "template": msg.template}
        body |= {"params": msg.params, "key": msg.key}
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        try:
            answer = await self.http.request("POST", self.url, data, headers)
        except (Unreached, Unanswered) as exc:  # refused, DNS, timeouts, reset
            # The receiver dedupes on `key`: the webhook has no records to ask.
            reached = isinstance(exc, Unanswered)
            raise network_failure(repr(exc), msg.phone, reached=reached) from None
        if answer.status >= 300:
            # 408 and 429 are "not now", not "never".
            retryable = answer.status >= 500 or answer.status in (408, 429)
            detail = answer.body[:200].decode("utf-8", "replace")
            raise failure(f"HTTP{answer.status}", detail, msg.phone, retryable)
        return f"webhook-{msg.key}"

    def close(self) -> None:
        self.http.close()


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
