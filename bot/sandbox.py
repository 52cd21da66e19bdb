"""The /dev sandbox's stand-in for the outside world, on a laptop with no WeChat account.

Usage::

    inbox = Inbox()
    inbox.add("wechat", to="o_giver", text="你送出的…已被领取")
    inbox.add("wechat", "o_giver", text, card={"title": …, "url": …})   # a card to forward
    inbox.add("subscription", "o_friend", text, title="中奖", follower=False)
    inbox.since(0)          # [{"id": 1, "channel": "wechat", "to": ..., "text": ...}, …]

With `[server] sandbox = true` the outbox delivers WeChat's messages here instead of to
api.weixin.qq.com (which a laptop cannot reach with a made-up AppID): customer-service
messages (and cards), template messages and one-time subscription messages (to a follower
in the account's chat, to anyone else in 服务通知); it copies every SMS here as well, so the
sandbox page can show what the phone and each person would receive. Kept in memory: it is a
view for one developer, not a record.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque


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
