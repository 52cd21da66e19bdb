"""A share's greeting as a picture or a voice: what the giver sent at the blessing step, what
the pages show of it, when it may be served, and when it is deleted.

Usage::

    kept = sent("MEDIA_ID")                             # what the chat keeps in the answers
    kept = sent("MEDIA_ID", "amr", "生日快乐")           # a voice and the words WeChat heard
    attach(share, {"picture": kept})                    # in the share's transaction: fetched later
    greeting = of(share)                                # Greeting: its picture's and voice's URLs
    row = servable("Xq3….jpg", now)                     # the row behind /media/<name>, or None
    deleted = sweep(config, now)                        # files of shares long over, deleted

The chat keeps the media_id of a picture or voice sent at the blessing step (bot/chat/engine.py);
`确认` makes the share and, in its transaction, a GreetingMedia row per kind and an outbox row
that fetches it (bot/outgoing/media_fetch.py): never inside the reply's 5 seconds. Until it is
fetched and checked the pages show the text alone; one that cannot be used leaves the text
greeting, and its giver is told why. A file is served under /media/ only while its share is
not over (bot/gifting/life.py), and deleted by the sweep `[shares] expire_hours` after its
share ended (expired, or withdrawn).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from bot import media_files
from bot.config import Config
from bot.gifting import life
from bot.outgoing import media_fetch
from bot.outgoing.outbox import enqueue
from storage import share_reads
from storage.db import after_commit
from storage.models import GreetingMedia, Share

log = logging.getLogger("gift_bot.media")

KINDS = ("picture", "voice")
SWEPT_PER_ROUND = 200


def sent(media_id: str, fmt: str = "", words: str = "") -> dict:
    """A picture or voice as the chat keeps it until the share is made (JSON, in the answers)."""
    return {"media_id": media_id[:128], "format": fmt[:16].lower(), "words": words}


def attach(share: Share, greeting: dict | None) -> list[GreetingMedia]:
    """The share's picture and voice, to be fetched in the background (its transaction)."""
    rows = []
    for kind in KINDS:
        kept = (greeting or {}).get(kind)
        if not kept or not kept.get("media_id"):
            continue
        row = GreetingMedia.create(
            share=share.id, kind=kind, media_id=kept["media_id"], format=kept.get("format", ""),
            words=kept.get("words", ""), created_at=share.created_at,
        )  # fmt: skip
        enqueue(media_fetch.KIND, f"media:{row.id}", {"media": row.id})
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Greeting:
    """What the pages show of a share's picture and voice (URLs under /media/, "" if none);
    its giver also reads what is still being fetched and what could not be used, and why."""

    picture: str = ""
    voice: str = ""
    words: str = ""  # what WeChat heard in the voice
    seconds: float = 0.0
    pending: tuple[str, ...] = ()  # kinds still being fetched
    failed: tuple[tuple[str, str], ...] = ()  # (kind, reason: a Code)

    def __bool__(self) -> bool:
        return bool(self.picture or self.voice or self.pending or self.failed)


NONE = Greeting()


def of(share: Share) -> Greeting:
    """The share's greeting media as its pages show them: one indexed query."""
    return greeting(share_reads.greeting_rows(share.id))


def greeting(rows: list[share_reads.GreetingRow]) -> Greeting:
    """What the pages show of a share's greeting rows."""
    if not rows:
        return NONE
    ready = {r.kind: r for r in rows if r.status == "ready"}
    voice = ready.get("voice")
    return Greeting(
        picture=f"/media/{ready['picture'].file}" if "picture" in ready else "",
        voice=f"/media/{voice.file}" if voice else "",
        words=voice.words if voice else "",
        seconds=voice.seconds if voice else 0.0,
        pending=tuple(r.kind for r in rows if r.status == "pending"),
        failed=tuple((r.kind, r.reason) for r in rows if r.status == "failed"),
    )


def servable(name: str, now: dt.datetime) -> GreetingMedia | None:
    """The ready file `name`, while its share is not over; None for anything else."""
    if media_files.path_of(".", name) is None:
        return None
    row = (
        GreetingMedia.select(GreetingMedia, Share)
        .join(Share)
        .where((GreetingMedia.file == name) & (GreetingMedia.status == "ready"))
        .first()
    )
    if row is None or life.state_of(row.share, now) in life.OVER:
        return None
    return row


def ended_before(when: dt.datetime):
    """Shares whose life ended before `when`: past their expiry, or withdrawn."""
    return (Share.expires_at < when) | (Share.revoked_at < when)


def sweep(config: Config, now: dt.datetime) -> int:
    """Delete the files (and forget the media) of shares that ended `[shares] expire_hours`
    ago; returns how many. A file another worker deleted first is simply gone."""
    since = now - dt.timedelta(hours=config.shares.expire_hours)
    due = (
        GreetingMedia.select(GreetingMedia.id, GreetingMedia.file)
        .join(Share)
        .where((GreetingMedia.status != "deleted") & ended_before(since))
        .limit(SWEPT_PER_ROUND)
    )
    done = 0
    for row in due:
        taken = (
            GreetingMedia.update(status="deleted", file="", media_id="")
            .where((GreetingMedia.id == row.id) & (GreetingMedia.status != "deleted"))
            .execute()
        )
        if taken and row.file:  # once the row says so for everyone
            after_commit(lambda name=row.file: media_files.remove(config.media.dir, name))
        done += taken
    if done:
        log.info("greeting media deleted", extra={"count": done})
    return done
