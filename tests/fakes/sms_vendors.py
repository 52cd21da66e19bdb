"""Fake SMS vendors on 127.0.0.1, each served from its own thread and event loop.

Usage::

    with FakeAliyun(access_key_id="AK", secret="SK") as aliyun:
        Aliyun(..., endpoint=aliyun.endpoint, protocol="http")   # point the SDK here
        ... send ...
        aliyun.received[0]["PhoneNumbers"]      # what the vendor was asked
        aliyun.answer_code = "isv.BUSINESS_LIMIT_CONTROL"   # next answers fail so

    with FakeTencent(secret_id="SID", secret_key="SKEY") as tencent: ...
    with FakeWebhook() as hook: hook.url; hook.fail_times = 2; hook.reject = True

Running in a thread lets the blocking SDKs (in `asyncio.to_thread`) and
Tornado's async client (in the test's `asyncio.run`) reach the fake alike.
Both vendor fakes check signatures as the vendor would (`sms_signing`) and
answer a bad one with the vendor's own error; only signed requests are recorded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from fakes.sms_signing import check_acs3, check_tc3


def closed_port() -> int:
    """A loopback port nobody listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeServer:
    """A Tornado app on a free loopback port, in a background thread; use as `with`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
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
        server = HTTPServer(app)
        server.add_sockets(self._sockets)
        self._ready.set()
        self._loop.run_forever()
        server.stop()
        self._loop.run_until_complete(server.close_all_connections())
        self._loop.close()


class _FakeHandler(RequestHandler):
    def initialize(self, fake: FakeServer) -> None:
        self.fake = fake

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


# -- Aliyun dysmsapi SendSms ----------------------------------------------------


class FakeAliyun(FakeServer):
    """Aliyun's SendSms: checks ACS3 signature, action, version; records the query."""

    def __init__(self, access_key_id: str, secret: str) -> None:
        super().__init__()
        self.access_key_id, self.secret = access_key_id, secret
        self.answer_code = "OK"  # or a business error, answered with HTTP 200
        self.fail_status = 0  # e.g. 503: answer that, with a JSON error body
        self.fail_html = False  # with fail_status: a proxy's HTML page instead

    def handler(self) -> type[RequestHandler]:
        return _AliyunHandler


class _AliyunHandler(_FakeHandler):
    def post(self) -> None:
        fake: FakeAliyun = self.fake
        request_id = str(uuid.uuid4()).upper()
        if fake.fail_status:
            if fake.fail_html:
                return self._html()
            error = {"Code": "ServiceUnavailable", "Message": "busy", "RequestId": request_id}
            return self.reply(fake.fail_status, error)
        error = check_acs3(self.request, fake.access_key_id, fake.secret) or self._check_action()
        if error:
            status, code = error
            return self.reply(status, {"Code": code, "Message": code, "RequestId": request_id})
        params = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        fake.received.append(params)
        body = {"Code": fake.answer_code, "Message": fake.answer_code, "RequestId": request_id}
        if fake.answer_code == "OK":
            body["BizId"] = f"{len(fake.received)}^0"
        self.reply(200, body)

    def _check_action(self) -> tuple[int, str] | None:
        if self.request.headers.get("x-acs-action") != "SendSms":
            return 400, "InvalidAction.NotFound"
        if self.request.headers.get("x-acs-version") != "2017-05-25":
            return 400, "InvalidVersion"
        return None

    def _html(self) -> None:
        self.set_status(self.fake.fail_status)
        self.set_header("Content-Type", "text/html")
        self.finish("<html><body>502 Bad Gateway</body></html>")


# -- Tencent Cloud SMS SendSms --------------------------------------------------


class FakeTencent(FakeServer):
    """Tencent's SendSms: checks TC3 signature, action, version; records the JSON body."""

    def __init__(self, secret_id: str, secret_key: str) -> None:
        super().__init__()
        self.secret_id, self.secret_key = secret_id, secret_key
        self.status_code = "Ok"  # per-number outcome in SendStatusSet
        self.error_code = ""  # e.g. "InternalError": a whole-request Response.Error

    def handler(self) -> type[RequestHandler]:
        return _TencentHandler


class _TencentHandler(_FakeHandler):
    def post(self) -> None:
        fake: FakeTencent = self.fake
        request_id = str(uuid.uuid4())
        error = check_tc3(self.request, fake.secret_id, fake.secret_key) or self._check_action()
        error = error or fake.error_code
        if error:  # Tencent reports every error with HTTP 200
            body = {"Error": {"Code": error, "Message": error}, "RequestId": request_id}
            return self.reply(200, {"Response": body})
        params = json.loads(self.request.body)
        fake.received.append(params)
        statuses = [self._status(phone, params) for phone in params.get("PhoneNumberSet", [])]
        self.reply(200, {"Response": {"SendStatusSet": statuses, "RequestId": request_id}})

    def _check_action(self) -> str | None:
        if self.request.headers.get("X-TC-Action") != "SendSms":
            return "InvalidAction"
        if self.request.headers.get("X-TC-Version") != "2021-01-11":
            return "NoSuchVersion"
        return None

    def _status(self, phone: str, params: dict) -> dict:
        code = self.fake.status_code
        return {
            "SerialNo": f"2028:{len(self.fake.received)}" if code == "Ok" else "",
            "PhoneNumber": phone,
            "Fee": 1 if code == "Ok" else 0,
            "SessionContext": params.get("SessionContext", ""),
            "Code": code,
            "Message": "send success" if code == "Ok" else code,
            "IsoCode": "CN",
        }
