"""The WeChat Pay stand-in on a free loopback port, and a merchant's notify URL to receive from it.

Usage::

    keys = MerchantKeys.generate()                      # slow (RSA): once per module
    with FakeWeChatPay(keys) as pay, NotifyReceiver() as shop:
        pay.gateway                                     # http://127.0.0.1:<port><prefix>: the API
        pay.standin.pay("T0001")                        # any control of WeChatPayStandIn
        pay.deliver()                                   # POST waiting notifications, now
        shop.received[0]["headers"], shop.received[0]["body"]
        shop.answers = [500, 200]                       # the shop's next answers, in order
        pay.start_sender(); eventually(lambda: len(shop.received) == 2)   # retries on their own

Each runs its own event loop in a background thread, so blocking clients (the
wechatpayv3 SDK on `requests`) and the test's own code can reach them alike.

GIFTBOT_TEST_WECHATPAY_VERIFY=certificates makes every FakeWeChatPay (unless a test names its
`verification`) a merchant of platform certificates, without WeChat Pay's public key; the
default, public_key, one of the public key alone (tests/paying.py configures the bot to match).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from handlers.standins.wechatpay import WeChatPayStandIn

MCHID = "1900000109"
APPID = "wx0fake0app0id0000"
SERIAL_NO = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
API_V3_KEY = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
VERIFY = os.environ.get("GIFTBOT_TEST_WECHATPAY_VERIFY") or "public_key"
if VERIFY not in ("public_key", "certificates"):
    raise SystemExit(f"GIFTBOT_TEST_WECHATPAY_VERIFY={VERIFY!r}: public_key or certificates")


@dataclass(frozen=True)
class MerchantKeys:
    """The merchant's API key pair and WeChat Pay's platform key, made once per test module."""

    merchant: rsa.RSAPrivateKey
    platform: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> MerchantKeys:
        return cls(new_key(), new_key())

    @property
    def merchant_pem(self) -> str:
        return private_pem(self.merchant)


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class _LoopThread:
    """A Tornado app on a free loopback port, served from its own thread and event loop."""

    def __init__(self) -> None:
        self._sockets = bind_sockets(0, "127.0.0.1")
        self.port: int = self._sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=type(self).__name__)

    def app(self) -> Application:
        raise NotImplementedError

    def run(self, coroutine: Any, timeout: float = 30) -> Any:
        """Await `coroutine` on this thread's loop and hand back its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self):
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = HTTPServer(self.app())
        server.add_sockets(self._sockets)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()
        server.stop()


class FakeWeChatPay(_LoopThread):
    """WeChatPayStandIn served at `url`; `standin` is the stand-in itself, with its controls."""

    def __init__(self, keys: MerchantKeys, prefix: str = "", **options: Any) -> None:
        super().__init__()
        self.prefix = prefix
        self.standin = WeChatPayStandIn(
            mchid=options.pop("mchid", MCHID),
            appid=options.pop("appid", APPID),
            merchant_public_key=keys.merchant.public_key(),
            merchant_serial_no=options.pop("merchant_serial_no", SERIAL_NO),
            api_v3_key=options.pop("api_v3_key", API_V3_KEY),
            platform_private_key=keys.platform,
            verification=options.pop("verification", VERIFY),
            **options,
        )
        self.gateway = self.url + prefix

    def app(self) -> Application:
        # xsrf_cookies as on the bot's own app, where the sandbox mounts the stand-in
        return Application(self.standin.routes(self.prefix), xsrf_cookies=True)

    def deliver(self, **options: Any) -> list:
        """One try for each waiting notification, awaited on the stand-in's own loop."""
        return self.run(self.standin.deliver_notifications(**options))

    def start_sender(self) -> None:
        self.loop.call_soon_threadsafe(self.standin.start_sender)


class NotifyReceiver(_LoopThread):
    """A merchant's notify URL: records each POST, answers `answers` in turn, then `default`."""

    def __init__(self, default: int = 204) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self.answers: list[int | float] = []  # a float is a delay in seconds before a 204
        self.default = default
        self.notify_url = self.url + "/pay/notify"

    def app(self) -> Application:
        return Application([(r"/pay/notify", _Receive, {"receiver": self})])


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Wait until `check()` holds (something runs on another thread's loop), or time out."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class _Receive(RequestHandler):
    def initialize(self, receiver: NotifyReceiver) -> None:
        self.receiver = receiver

    async def post(self) -> None:
        receiver = self.receiver
        receiver.received.append({"headers": dict(self.request.headers), "body": self.request.body})
        answer = receiver.answers.pop(0) if receiver.answers else receiver.default
        if isinstance(answer, float):
            await asyncio.sleep(answer)
            answer = 204
        self.set_status(answer)
        if answer >= 300:
            self.finish({"code": "FAIL", "message": "失败"})
