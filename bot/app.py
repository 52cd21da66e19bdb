"""Wiring: from a config to the running parts of the bot, with nothing about HTTP in it.

Usage::

    services = Services.start(config)          # connects, migrates, syncs the catalogue
    services.chat.handle(incoming)             # the chat
    await services.worker.run(stop)            # the outbox, in `serve` or `python -m bot worker`

`clock` is the one source of "now" (naive UTC); tests move it instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bot import catalogue
from bot.chat import Chat
from bot.config import Config
from bot.notices import Notices
from bot.outbox import Worker
from bot.render import Renderer
from bot.sandbox import Inbox
from bot.sms import SmsMessage, make_sender
from bot.wechat_api import WeChatApi
from storage import db as storage
from storage.models import utcnow


@dataclass
class Clock:
    """utcnow() plus an offset that tests (and only tests) move forward."""

    offset: dt.timedelta = field(default_factory=dt.timedelta)

    def __call__(self) -> dt.datetime:
        return utcnow() + self.offset


@dataclass
class Services:
    config: Config
    clock: Clock
    renderer: Renderer
    notices: Notices
    chat: Chat
    wechat: WeChatApi
    worker: Worker
    inbox: Inbox | None = None  # the /dev sandbox's view of SMS and WeChat messages

    @classmethod
    def start(cls, config: Config, clock: Clock | None = None, sync: bool = True) -> Services:
        storage.connect(config.database.url)
        storage.migrate()
        if sync:
            catalogue.sync(config.gifts)
        clock = clock or Clock()
        renderer = Renderer(config)
        notices = Notices(config, renderer)
        wechat = WeChatApi(config.wechat)
        sms = make_sender(config.sms)

        inbox = Inbox() if config.server.sandbox else None

        async def send_sms(payload: dict, key: str) -> None:
            await sms.send(SmsMessage(key=key, **_sms_fields(payload)))
            if inbox:
                inbox.add("sms", payload["phone"], payload["text"])

        async def send_wechat_text(payload: dict, key: str) -> None:
            if inbox:  # a laptop has no Official Account to send from
                inbox.add("wechat", payload["openid"], payload["text"])
                return
            await wechat.send_text(payload["openid"], payload["text"])

        worker = Worker(
            {"sms": send_sms, "wechat_text": send_wechat_text},
            retry_seconds=config.sms.retry_seconds,
            max_attempts=config.sms.max_attempts,
            clock=clock,
        )
        chat = Chat(config, renderer, notices, clock=clock)
        return cls(config, clock, renderer, notices, chat, wechat, worker, inbox)

    def now(self) -> dt.datetime:
        return self.clock()


def _sms_fields(payload: dict) -> dict:
    return {k: payload[k] for k in ("phone", "text", "template", "params")}
