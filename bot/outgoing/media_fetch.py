"""The outbox's `greeting_media`: a giver's picture or voice fetched from WeChat in the
background, checked, and kept as a file the share's pages show.

Usage::

    enqueue(KIND, f"media:{row.id}", {"media": row.id})      # bot/gifting/media.py, at 确认
    fetcher = MediaFetcher(config, wechat, db, notices, max_attempts=6)
    await fetcher.send(payload, "outbox-17")                 # the outbox's sender

One job per GreetingMedia row: `GET {api_base}/cgi-bin/media/get` through the WeChat API
client (in the /dev sandbox, the same client pointed at the sandbox's stand-in, which serves
the files its page uploaded), then the checks of bot/media_files.py (a picture re-encoded
without its metadata; a voice turned into AAC by ffmpeg, off the event loop), then the file
under `[media] dir` and the row `ready`, in one transaction. A file WeChat no longer has
(40007: temporary media live 3 days), one that fails the checks, or WeChat unreachable on the
job's last attempt marks the row `failed` with its reason, and its giver is told why
(Notices.greeting_refused): the share's text greeting stands. Where ffmpeg is missing a voice
is not fetched at all: its words stay the greeting.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from bot import media_files
from bot.codes import Code
from bot.config import Config
from bot.outgoing.notices import Notices
from bot.outgoing.wechat_api import WeChatApi, WeChatError
from storage.db import write_transaction
from storage.models import Gift, GreetingMedia, Outbox, Share, utcnow
from storage.runner import Runner

log = logging.getLogger("gift_bot.media_fetch")

KIND = "greeting_media"  # the outbox kind
GONE = frozenset({40007})  # invalid media_id: never sent, or past its 3 days


class MediaFetcher:
    def __init__(
        self, config: Config, wechat: WeChatApi, db: Runner, notices: Notices, max_attempts: int
    ):
        self.config, self.wechat, self.db, self.notices = config, wechat, db, notices
        self.max_attempts = max_attempts
        self.ffmpeg = media_files.ffmpeg_path(config.media.ffmpeg)

    async def send(self, payload: dict, ref: str) -> None:
        row = await self.db.run(_pending, payload["media"])
        if row is None:  # done already (a retried job), or deleted with its share
            return
        try:
            kept = await self._fetched_and_checked(row)
        except media_files.Refused as refused:
            await self.db.write(failed, self.notices, row.id, refused.code, utcnow())
            return
        except WeChatError as exc:
            if exc.retryable and not await self.db.run(_last_attempt, ref, self.max_attempts):
                raise  # the outbox tries again later
            reason = Code.MEDIA_GONE if exc.errcode in GONE else Code.MEDIA_UNREACHABLE
            await self.db.write(failed, self.notices, row.id, reason, utcnow())
            return
        name = await asyncio.to_thread(media_files.store, self.config.media.dir, kept)
        await self.db.write(ready, row.id, name, kept, self.config.media.dir, utcnow())

    async def _fetched_and_checked(self, row: GreetingMedia) -> media_files.Kept:
        if row.kind == "voice" and self.ffmpeg is None:
            raise media_files.Refused(Code.VOICE_NO_FFMPEG)  # no use fetching what cannot play
        most = media_files.MAX_BYTES if row.kind == "picture" else media_files.MAX_VOICE_BYTES
        media = await self.wechat.get_media(row.media_id, most)
        if media.size > most:
            raise media_files.Refused(Code.MEDIA_TOO_BIG)
        if row.kind == "picture":  # Pillow's decoding is CPU work: off the event loop
            return await asyncio.to_thread(media_files.picture, media.body)
        return await media_files.voice(media.body, row.format or "amr", self.ffmpeg)


def _pending(row_id: int) -> GreetingMedia | None:
    return GreetingMedia.get_or_none(
        (GreetingMedia.id == row_id) & (GreetingMedia.status == "pending")
    )


def _last_attempt(ref: str, most: int) -> bool:
    """Whether the outbox row `outbox-<id>` is on its last attempt: a passing fault then is
    final, and the giver hears of it rather than never."""
    row = Outbox.get_or_none(Outbox.id == int(ref.removeprefix("outbox-")))
    return row is None or row.attempts >= most


def ready(row_id: int, name: str, kept: media_files.Kept, folder: str, now: dt.datetime) -> None:
    with write_transaction():
        done = (
            GreetingMedia.update(
                status="ready",
                file=name,
                content_type=kept.content_type,
                size=len(kept.data),
                seconds=kept.seconds,
                done_at=now,
            )  # fmt: skip
            .where((GreetingMedia.id == row_id) & (GreetingMedia.status == "pending"))
            .execute()
        )
    if not done:  # another worker finished it first, or its share's sweep came: ours goes
        media_files.remove(folder, name)


def failed(notices: Notices, row_id: int, reason: Code, now: dt.datetime) -> None:
    """The greeting falls back to its text; its giver is told why, once."""
    with write_transaction():
        done = (
            GreetingMedia.update(status="failed", reason=str(reason), done_at=now)
            .where((GreetingMedia.id == row_id) & (GreetingMedia.status == "pending"))
            .execute()
        )
        if not done:
            return
        row = GreetingMedia.get_by_id(row_id)
        share = Share.get_by_id(row.share_id)
        share.gift = Gift.get_by_id(share.gift_id)
        notices.greeting_refused(share, row.kind, reason)
    log.info("greeting media refused", extra={"media": row_id, "reason": str(reason)})
