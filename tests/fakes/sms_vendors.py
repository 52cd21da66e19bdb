"""Fake SMS backends on 127.0.0.1, each served from its own thread and event loop.

Usage::

    with FakeWebhook() as hook: hook.url; hook.fail_times = 2; hook.reject = True
    # the vendors, on this base: fakes/aliyun_sms.py (FakeAliyun), fakes/tencent_sms.py
    # (FakeTencent)

Running in a thread lets the blocking SDKs (in `asyncio.to_thread`) and
Tornado's async client (in the test's `asyncio.run`) reach the fake alike.
`FakeVendor` is what both vendors share: the SMS they accepted (`sent`), shown
in their records `lag_seconds` after, on a clock a test may share with the bot,
and answers that never come (`stall`), before or after the SMS was taken.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler


def closed_port() -> int:
    """A loopback port nobody listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeServer:
    """A Tornado app on a free loopback port, in a background thread; use as `with`.
    `server_options`: HTTPServer's (an `idle_connection_timeout`, say)."""

    server_options: dict[str, Any] = {}

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.peers: list[int] = []  # each request's client port: which connections were kept
        self._sockets = bind_sockets(0, "127.0.0.1")
        self.port: int = self._sockets[0].getsockname()[1]
        self.endpoint = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.endpoint}/"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def handler(self) -> type[RequestHandler]:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = Application([(r"/.*", self.handler(), {"fake": self})])
        server = HTTPServer(app, **self.server_options)
        server.add_sockets(self._sockets)
        self._ready.set()
        self._loop.run_forever()
        server.stop()
        self._loop.run_until_complete(server.close_all_connections())
        self._loop.close()


class _FakeHandler(RequestHandler):
    def initialize(self, fake: FakeServer) -> None:
        self.fake = fake

    def prepare(self) -> None:
        self.fake.peers.append(self.request.connection.stream.socket.getpeername()[1])

    def reply(self, status: int, body: dict, content_type: str = "application/json") -> None:
        self.set_status(status)
        # Exactly "application/json": Tencent's SDK reads `Error` only then.
        self.set_header("Content-Type", content_type)
        self.finish(json.dumps(body, ensure_ascii=False).encode("utf-8"))


# -- webhook receiver ---------------------------------------------------------


class FakeWebhook(FakeServer):
    """Records JSON bodies; `fail_times` answers 500 first, `reject` answers 400."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_times = 0
        self.reject = False

    def handler(self) -> type[RequestHandler]:
        return _WebhookHandler


class _WebhookHandler(_FakeHandler):
    def post(self) -> None:
        fake = self.fake
        if fake.reject:
            return self.reply(400, {"error": "bad phone"})
        if fake.fail_times > 0:
            fake.fail_times -= 1
            return self.reply(500, {"error": "try later"})
        fake.received.append(json.loads(self.request.body))
        self.reply(200, {"ok": True})


# -- what both vendors share ----------------------------------------------------


def utc_now() -> dt.datetime:
    """Naive UTC, as the bot's clock reads."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class FakeVendor(FakeServer):
    """An SMS vendor's books: every SMS it took, shown in its records after a lag.

    `sent` holds the SMS a phone would get (a dict per SMS: `phone`, `key` — our OutId or
    SessionContext —, `at` on `clock`, and the vendor's own fields); `received` every
    signed send request, taken or refused. `stall = "before"` holds the next send's
    answer for `stall_seconds` and takes nothing (the request never reached the
    vendor's books); `stall = "after"` takes the SMS first (its answer is what got lost).
    `stall_times` sends stall, then it answers again.
    """

    def __init__(self, clock: Callable[[], dt.datetime] = utc_now) -> None:
        super().__init__()
        self.clock = clock
        self.sent: list[dict[str, Any]] = []
        self.lag_seconds = 0.0  # how long an SMS takes to show in the records
        self.stall = ""  # "", "before" or "after"
        self.stall_times = 1
        self.stall_seconds = 2.0
        self.queries: list[dict[str, Any]] = []  # every signed records query

    def visible(self) -> list[dict[str, Any]]:
        """The SMS its records show now."""
        now = self.clock()
        shown = dt.timedelta(seconds=self.lag_seconds)
        return [sms for sms in self.sent if sms["at"] + shown <= now]

    def take_stall(self) -> str:
        """The stall this send gets ("" for none), counting it."""
        if not self.stall or self.stall_times <= 0:
            return ""
        self.stall_times -= 1
        return self.stall


class VendorHandler(_FakeHandler):
    fake: FakeVendor

    async def hold(self) -> None:
        """Answer nothing until the client has given up, then hang up."""
        await asyncio.sleep(self.fake.stall_seconds)
        self.request.connection.close()
