"""The /dev sandbox's stand-in for the outside world, on a laptop with no WeChat account.

Usage::

    inbox = Inbox()
    inbox.add("wechat", to="o_giver", text="你送出的…已被领取")
    inbox.add("wechat", "o_giver", text, card={"title": …, "url": …})   # a card to forward
    inbox.add("subscription", "o_friend", text, title="中奖", follower=False)
    inbox.since(0)          # [{"id": 1, "channel": "wechat", "to": ..., "text": ...}, …]
    media_id = keep_upload(config.media.dir, body, "image/jpeg")   # a picture "sent" in chat
    upload_of(config.media.dir, media_id)   # (path, content type), or None once 3 days old

A picture or voice the sandbox's page sends is kept here as WeChat keeps a user's media
(temporary, 3 days, by media_id): the sandbox's stand-in of WeChat's getMedia under API
(handlers/standins/wechat_media.py) serves it, so the same outbox job that fetches from
WeChat fetches it (bot/outgoing/media_fetch.py).

With `[server] sandbox = true` the outbox delivers WeChat's messages here instead of to
api.weixin.qq.com (which a laptop cannot reach with a made-up AppID): customer-service
messages (and cards), template messages and one-time subscription messages (to a follower
in the account's chat, to anyone else in 服务通知); it copies every SMS here as well, so the
sandbox page can show what the phone and each person would receive. Kept in memory: it is a
view for one developer, not a record.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import time
from collections import deque
from pathlib import Path

API = "/dev/wechat"  # where handlers/app.py mounts the stand-in of WeChat's API (getMedia)
UPLOADS = "sandbox-uploads"  # under [media] dir
UPLOAD_DAYS = 3  # as WeChat keeps temporary media
MAX_UPLOAD = 10 * 1024 * 1024  # WeChat's own limit for a picture message
UPLOAD_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif",
                "image/webp": "webp", "audio/amr": "amr", "audio/speex": "speex",
                "application/octet-stream": "bin"}  # fmt: skip
_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{20,64}")


class Inbox:
    def __init__(self, size: int = 200):
        self._items: deque[dict] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, channel: str, to: str, text: str, **more) -> None:
        """One message; `more`: a card, a subscription message's title and where it shows."""
        with self._lock:
            item = {"id": next(self._ids), "channel": channel, "to": to, "text": text}
            self._items.append(item | {k: v for k, v in more.items() if v is not None})

    def since(self, after: int) -> list[dict]:
        with self._lock:
            return [item for item in self._items if item["id"] > after]


def keep_upload(media_dir: str, body: bytes, content_type: str) -> str:
    """Keep a file the sandbox's page sends as a user's picture or voice; its media_id."""
    folder = Path(media_dir) / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    media_id = secrets.token_urlsafe(32)
    ext = UPLOAD_TYPES.get(content_type, "bin")
    (folder / f"{media_id}.{ext}").write_bytes(body)
    return media_id


def upload_of(media_dir: str, media_id: str) -> tuple[Path, str] | None:
    """The kept file and its content type, while it is younger than UPLOAD_DAYS."""
    if not _MEDIA_ID.fullmatch(media_id or ""):
        return None
    for path in (Path(media_dir) / UPLOADS).glob(f"{media_id}.*"):
        if time.time() - path.stat().st_mtime < UPLOAD_DAYS * 86400:
            kinds = {ext: kind for kind, ext in UPLOAD_TYPES.items()}
            return path, kinds.get(path.suffix[1:], "application/octet-stream")
    return None


def forget_uploads(media_dir: str) -> None:
    """Delete what the sandbox's page sent more than UPLOAD_DAYS ago."""
    folder = Path(media_dir) / UPLOADS
    for path in folder.glob("*.*") if folder.is_dir() else ():
        if time.time() - path.stat().st_mtime >= UPLOAD_DAYS * 86400:
            path.unlink(missing_ok=True)
