"""What every SMS backend shares: the message, the `Sender` contract with its logging, and
which vendor template a message uses (bot/outgoing/sms/ picks the backend).

Usage::

    class MySender(Sender):
        name = "mine"
        async def _deliver(self, msg: SmsMessage) -> str: ...
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
from dataclasses import dataclass

from bot.forms.person import mask_phone
from bot.outgoing.sms.errors import SmsError
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

    def close(self) -> None:  # noqa: B027 -- most backends hold nothing open
        """Let go of what the backend holds open (the webhook's connections)."""

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
