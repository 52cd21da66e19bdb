"""WeChat Pay's notifications: POSTed to the notify_url, signed, retried until answered 2xx.

Usage::

    notifier = Notifier(sign=..., clock=time.time, retry_scale=0.01, answer_timeout=5)
    note = notifier.queue(envelope, url, plaintext)   # due now (or `after` seconds)
    await notifier.deliver()              # one attempt for each waiting notification, now
    notifier.start()                      # or: a task that sends them when due, retries on schedule
    notifier.repeat(note.id)              # send a delivered one again (WeChat Pay repeats itself)

A 200 or 204 answer within `answer_timeout` (5 s, as WeChat Pay waits) ends a
notification; any other answer, or none, schedules the next try after
RETRY_SCHEDULE[n] seconds times `retry_scale` (the tests shrink it), and the
last failure gives up. Every try is signed afresh, so its timestamp is current.
Only loopback hosts are ever reached from here: another host's try is recorded
as failed, never sent.

Sources: pay.weixin.qq.com 回调通知注意事项 (answer within 5 s, repeats must be
handled, SIGNTEST probes), 支付成功回调通知 / 退款结果回调通知 (200/204 is
success; the resend frequency 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h,
24h4m in all, quoted again in wechatpay-apiv3/wechatpay-skills' 回调通知处理.md).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from handlers.standins.wechatpay_rules import is_loopback
from handlers.standins.wechatpay_wire import dump

# The waits before each resend, as the docs give them: 15 resends, 24h4m in all.
DOCUMENTED_SCHEDULE = "15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h"
UNITS = {"s": 1, "m": 60, "h": 3600}
RETRY_SCHEDULE = tuple(int(wait[:-1]) * UNITS[wait[-1]] for wait in DOCUMENTED_SCHEDULE.split("/"))
PENDING, DELIVERED, GAVE_UP = "pending", "delivered", "gave_up"

# (body, probe) -> the Wechatpay-* headers for that body
Signer = Callable[[bytes, bool], dict[str, str]]


@dataclass
class Attempt:
    at: float  # the stand-in's clock
    status: int | None  # None: no HTTP answer (refused, timed out, or not sent)
    error: str = ""
    probe: bool = False  # signed with a WECHATPAY/SIGNTEST/ signature on purpose


@dataclass
class Notification:
    id: str
    event_type: str
    url: str
    body: bytes
    plaintext: dict  # what the ciphertext decrypts to, for tests and the sandbox's eyes
    attempts: list[Attempt] = field(default_factory=list)
    state: str = PENDING
    due: float = 0.0  # time.monotonic() of the next try


class Notifier:
    def __init__(
        self,
        sign: Signer,
        clock: Callable[[], float],
        retry_scale: float = 1.0,
        answer_timeout: float = 5.0,
    ):
        self.sign, self.clock = sign, clock
        self.retry_scale, self.answer_timeout = retry_scale, answer_timeout
        self.notifications: list[Notification] = []
        self._lock = threading.RLock()  # queued from any thread, sent from the loop's
        self._probe_next = False
        self._sending: set[str] = set()  # a manual deliver() and the sender never send one twice
        self._task: asyncio.Task | None = None

    def queue(self, envelope: dict, url: str, plaintext: dict, after: float = 0.0) -> Notification:
        """`envelope` is the notification's JSON (id, event_type, resource, ...), sent as is;
        not due for `after` seconds (a late notification: WeChat Pay promises no timing)."""
        body = dump(envelope)
        note = Notification(envelope["id"], envelope["event_type"], url, body, plaintext)
        note.due = time.monotonic() + after
        with self._lock:
            self.notifications.append(note)
        return note

    def repeat(self, notification_id: str) -> None:
        """Send this notification once more, as WeChat Pay may although it was answered."""
        with self._lock:
            note = self._find(notification_id)
            note.state, note.due = PENDING, time.monotonic()

    def probe_next(self) -> None:
        """The next try carries a WECHATPAY/SIGNTEST/ signature, which must be refused."""
        self._probe_next = True

    async def deliver(self, *, due_only: bool = False, reverse: bool = False) -> list[Attempt]:
        """One try for each waiting notification (only those due, if `due_only`), in the order
        they were made, or the reverse: notifications may arrive out of order."""
        now = time.monotonic()
        with self._lock:
            batch = [n for n in self.notifications if self._ready(n, now, due_only)]
            self._sending.update(n.id for n in batch)
        attempts = []
        try:
            for note in reversed(batch) if reverse else batch:
                attempts.append(await self._try(note))
        finally:
            with self._lock:
                self._sending.difference_update(n.id for n in batch)
        return attempts

    def _ready(self, note: Notification, now: float, due_only: bool) -> bool:
        waiting = note.state == PENDING and note.id not in self._sending
        return waiting and (not due_only or note.due <= now)

    def start(self) -> None:
        """Send due notifications from a task on the running loop until stop()."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await self.deliver(due_only=True)
            with self._lock:
                dues = [n.due for n in self.notifications if n.state == PENDING]
            wait = min(dues, default=time.monotonic() + 0.5) - time.monotonic()
            await asyncio.sleep(min(max(wait, 0.005), 0.5))

    async def _try(self, note: Notification) -> Attempt:
        probe, self._probe_next = self._probe_next, False
        attempt = Attempt(at=self.clock(), status=None, probe=probe)
        if not is_loopback(urlsplit(note.url).hostname or ""):
            attempt.error = "not sent: only loopback hosts are reached from the stand-in"
        else:
            try:
                response = await AsyncHTTPClient().fetch(
                    note.url,
                    method="POST",
                    body=note.body,
                    headers={"Content-Type": "application/json", **self.sign(note.body, probe)},
                    connect_timeout=self.answer_timeout,
                    request_timeout=self.answer_timeout,
                    raise_error=False,  # any status is an answer; timeouts still raise
                )
                attempt.status = response.code
            except (HTTPClientError, OSError) as exc:
                attempt.error = f"no answer: {exc}"
        with self._lock:
            note.attempts.append(attempt)
            self._after(note, attempt)
        return attempt

    def _after(self, note: Notification, attempt: Attempt) -> None:
        if attempt.status in (200, 204):
            note.state = DELIVERED
            return
        failures = sum(1 for a in note.attempts if a.status not in (200, 204))
        if failures > len(RETRY_SCHEDULE):
            note.state = GAVE_UP
            return
        note.due = time.monotonic() + RETRY_SCHEDULE[failures - 1] * self.retry_scale

    def _find(self, notification_id: str) -> Notification:
        for note in self.notifications:
            if note.id == notification_id:
                return note
        raise KeyError(notification_id)
