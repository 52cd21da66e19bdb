"""Wiring: from a config to the running parts of the bot, with nothing about HTTP in it.

Usage::

    services = Services.start(config)          # connects, migrates, syncs the catalogue
    services.chat.handle(incoming)             # the chat
    await services.background(stop)            # outbox + expiry sweep: `serve` or `python -m bot worker`

`clock` is the one source of "now" (naive UTC); tests move it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import gc
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvloop

from bot import media_files, sandbox
from bot.chat import pushes
from bot.chat.chat import Chat
from bot.config import Config
from bot.config.payments import uses_standin
from bot.forms import numbers
from bot.gifting import catalogue, draws, media, mobile_claims, reminders, shares
from bot.money.merchant import Merchant
from bot.money.paydesk import PayDesk
from bot.outgoing import media_fetch
from bot.outgoing.messaging import Messenger
from bot.outgoing.notices import Notices
from bot.outgoing.outbox import Channel, Worker
from bot.outgoing.sms import Sender, SmsMessage, make_sender
from bot.outgoing.wechat_api import WeChatApi
from bot.render import Renderer
from bot.sandbox import Inbox
from storage import db as storage
from storage.models import utcnow
from storage.runner import Runner

T = TypeVar("T")

log = logging.getLogger("gift_bot.background")


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
    db: Runner
    inbox: Inbox | None = None  # the /dev sandbox's view of SMS and WeChat messages
    pay: PayDesk | None = None  # [payments] mode "wechatpay": WeChat Pay's side of sharing
    media_source: WeChatApi | None = None  # the sandbox's client of its own media stand-in
    sms: Sender | None = None  # the outbox's SMS backend

    @classmethod
    def start(cls, config: Config, clock: Clock | None = None, sync: bool = True) -> Services:
        threads = config.database.threads  # PostgreSQL: jobs at once on the loop, a connection each
        storage.connect(config.database.url, max_connections=threads + 4, jobs=threads)
        storage.migrate()
        if sync:
            catalogue.sync(config.gifts)
        clock = clock or Clock()
        numbers.converter()  # loaded now, not in a message's time
        renderer = Renderer(config)
        notices = Notices(config, renderer)
        db = Runner.for_database(config.database.threads)
        wechat = WeChatApi(config.wechat, db)
        sms = make_sender(config.sms)

        inbox = Inbox() if config.server.sandbox else None

        async def send_sms(payload: dict, key: str) -> None:
            await sms.send(SmsMessage(key=key, **_sms_fields(payload)))
            if inbox:
                inbox.add("sms", payload["phone"], payload["text"])

        messenger = Messenger(config, wechat, db, clock, inbox)

        async def sms_went(payload: dict, key: str, since: dt.datetime, now: dt.datetime) -> bool:
            return await sms.went(payload["phone"], key, since, now)

        # Before an SMS whose answer never came is sent again, its vendor's records are asked.
        sms_retry = (config.sms.retry_seconds, config.sms.max_attempts)
        sms_asked = (sms_went if sms.checks else None, config.sms.records_lag_seconds)
        channels = {
            "sms": Channel(send_sms, *sms_retry, *sms_asked),
            "sms_code": Channel(  # a verified mobile's code (bot/gifting/mobile_claims.py)
                mobile_claims.code_sender(config, send_sms), *sms_retry, *sms_asked
            ),
            "wechat_text": Channel(
                messenger.send, config.wechat.retry_seconds, config.wechat.max_attempts
            ),
        }
        source = _media_source(config, wechat, db)
        fetcher = media_fetch.MediaFetcher(config, source, db, notices, MEDIA_ATTEMPTS)
        channels[media_fetch.KIND] = Channel(  # a greeting's picture or voice
            fetcher.send, config.wechat.retry_seconds, MEDIA_ATTEMPTS
        )
        pay = _pay_desk(config, notices, db, clock)
        if pay is not None:
            channels |= pay.channels()
        worker = Worker(channels, db, clock=clock)
        if pay is not None:
            pay.wake = worker.wake.set
        chat = Chat(config, renderer, notices, clock=clock)
        local = source if source is not wechat else None
        return cls(
            config, clock, renderer, notices, chat, wechat, worker, db, inbox, pay, local, sms
        )

    def now(self) -> dt.datetime:
        return self.clock()

    async def sweep_once(self) -> None:
        """Expired shares' stock back, due draws drawn, reminders queued, old push records
        forgotten."""
        now = self.now()
        released = await self.db.write(shares.release_expired, now)
        if released:
            log.info("released expired shares", extra={"count": released})
        drawn = await self.db.write(draws.draw_due, self.notices, now)
        if drawn:
            self.worker.wake.set()
            log.info("draws drawn", extra={"count": drawn})
        reminded = await self.db.write(reminders.send_due, self.config, self.notices, now)
        if reminded:
            self.worker.wake.set()
            log.info("reminders queued", extra={"count": reminded})
        while await self.db.write(pushes.prune, now):  # a job per 2 000 rows: others between
            pass
        await self.db.write(media.sweep, self.config, now)
        if self.config.server.sandbox:
            await asyncio.to_thread(sandbox.forget_uploads, self.config.media.dir)
        if self.pay is not None:
            await self.pay.reconcile_once()

    def close(self) -> None:
        """After the server and the background work stopped: finish database work, let go."""
        self.db.close()
        self.wechat.close()
        if self.sms is not None:
            self.sms.close()
        if self.media_source is not None:
            self.media_source.close()
        if self.pay is not None:
            self.pay.close()

    async def background(self, stop: asyncio.Event) -> None:
        """The work no request waits for: the outbox, expired shares' stock, old push records."""
        await asyncio.gather(self.worker.run(stop), self.sweep(stop))

    async def sweep(self, stop: asyncio.Event, every: float = 60.0) -> None:
        while not stop.is_set():
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)


# Collect young objects after this many allocations (Python's default: 700). A message makes
# thousands of short-lived objects, nearly all freed by their reference counts; at the
# default, the cyclic collector ran several times a message and its older generations walked
# the whole heap, which is what made the slowest replies slow (issue 27: SQLite catalogue p99
# 33–36 → 12–18 ms under full load, side by side; bench/PROFILE.md).
YOUNG_THRESHOLD = 50_000
OLDER_THRESHOLDS = (50, 100)


def settle_heap() -> None:
    """Once a long-running process (`serve`, `worker`) has started: what start-up made
    (modules, templates, config, the URL table) lives as long as the process, so the
    collector stops walking it (`gc.freeze`), and collects less often. Memory stays bounded:
    cycles are still collected, later."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a long-running process's `main` (`serve`, `worker`) on uvloop's event loop, which
    is libuv's, in C: 6–7 % less of the bot's CPU per catalogue and claim reply than on
    asyncio's, measured side by side (issue 27, bench/PROFILE.md). Tornado, aiohttp and the
    database jobs run on it as on asyncio's; the tests run on it too."""
    return uvloop.run(main)


MEDIA_ATTEMPTS = 6  # a greeting's fetch: about half an hour of retries, well within 3 days


def _media_source(config: Config, wechat: WeChatApi, db: Runner) -> WeChatApi:
    """Where greeting media are fetched: WeChat's API; in the sandbox (no Official Account
    behind it) the same client pointed at the sandbox's own stand-in of getMedia, which
    serves what the /dev page uploaded (handlers/standins/wechat_media.py)."""
    if media_files.ffmpeg_path(config.media.ffmpeg) is None:  # said once, at start
        log.warning(
            "ffmpeg not found: voice greetings fall back to their words (apt-get install "
            "ffmpeg, or [media] ffmpeg)", extra={"ffmpeg": config.media.ffmpeg},
        )  # fmt: skip
    if not config.server.sandbox:
        return wechat
    local = dataclasses.replace(config.wechat, api_base=config.server.public_url + sandbox.API)
    return WeChatApi(local, db, token_row="sandbox")


def _pay_desk(config: Config, notices: Notices, db: Runner, clock: Clock) -> PayDesk | None:
    """WeChat Pay's desk in wechatpay mode. In the sandbox without keys, a merchant key made
    now; WeChat Pay's key is the built-in stand-in's, which handlers/app.py mounts."""
    if not config.payments.paid:
        return None
    if uses_standin(config):
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        merchant = Merchant.from_config(_standin_config(config), private_key=key, public_key=None)
    else:
        merchant = Merchant.from_config(config)
    return PayDesk(config, merchant, notices, db, clock)


def _standin_config(config: Config) -> Config:
    """The sandbox's merchant: the stand-in's numbers unless the config names its own."""
    w = config.payments.wechatpay
    sandbox = dataclasses.replace(
        w,
        mchid=w.mchid or STANDIN_MCHID,
        api_v3_key=w.api_v3_key or STANDIN_API_V3_KEY,
        cert_serial_no=w.cert_serial_no or STANDIN_SERIAL_NO,
        api_base=f"{config.server.public_url}{STANDIN_PREFIX}",
    )
    return dataclasses.replace(
        config, payments=dataclasses.replace(config.payments, wechatpay=sandbox)
    )


STANDIN_PREFIX = "/dev/wechatpay"  # where handlers/app.py mounts WeChat Pay's stand-in
STANDIN_MCHID = "1900000109"
STANDIN_API_V3_KEY = "sandbox-apiv3-key-0123456789abcd"
STANDIN_SERIAL_NO = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"


def _sms_fields(payload: dict) -> dict:
    return {k: payload[k] for k in ("phone", "text", "template", "params")}
