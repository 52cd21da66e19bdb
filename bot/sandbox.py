"""The /dev sandbox's stand-in for the outside world, on a laptop with no WeChat account.

Usage::

    inbox = Inbox()
    inbox.add("wechat", to="o_giver", text="你送出的…已被领取")
    inbox.since(0)          # [{"id": 1, "channel": "wechat", "to": ..., "text": ...}]

With `[server] sandbox = true` the outbox delivers WeChat customer-service
messages here instead of to api.weixin.qq.com (which a laptop cannot reach
with a made-up AppID), and copies every SMS here as well, so the sandbox page
can show what the phone and the giver would receive. Kept in memory: it is a
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

    def add(self, channel: str, to: str, text: str) -> None:
        with self._lock:
            self._items.append({"id": next(self._ids), "channel": channel, "to": to, "text": text})

    def since(self, after: int) -> list[dict]:
        with self._lock:
            return [item for item in self._items if item["id"] > after]
