"""`/wechat`: WeChat's callback. GET is the URL check, POST a message or event.

POST is answered by `Front`, the HTTP server's own delegate, before tornado.web sees it: a push
is the one request that comes by the thousand a second in a campaign, and the web framework's
part of one (routing, a RequestHandler with its default headers, the query copied, the
coroutine wrapped twice) was a quarter of a catalogue reply's own time (issue 27). Every other
request, GET /wechat included, goes on to the Application as before.

The signature (and in safe mode `msg_signature`, then decryption) is checked before the body
is parsed: a forged request is refused with 403 and touches nothing. In plaintext mode the
signature does not cover the body, so a used (timestamp, nonce) with another body is a replay:
403. Malformed XML, a wrong AppID, a DTD or a body not in UTF-8 is a 400. The wire format both
ways is `handlers/wire.py`'s; the meaning of a message is `bot.chat.chat`'s business.

Usage (handlers/app.py)::

    HTTPServer(Front(make_app(services)), max_body_size=MAX_BODY, ...)
"""

from __future__ import annotations

import asyncio
import logging
import time

import tornado.web
from tornado import httputil
from tornado.escape import parse_qs_bytes
from tornado.iostream import StreamClosedError

from bot import logs, metrics
from bot.app import Services
from bot.chat import pushes
from bot.replies import Text
from handlers import wire
from handlers.web.base import BaseHandler, request_failed

log = logging.getLogger("gift_bot.wechat")

PATH = "/wechat"
MAX_BODY = 64 * 1024
MAX_FIELDS = 32  # WeChat's query has six (signature, timestamp, nonce, openid, two in safe mode)


class WeChatHandler(BaseHandler):
    """WeChat's URL check (GET). Its pushes (POST) are `Front`'s."""

    def check_xsrf_cookie(self) -> None:
        """WeChat signs its requests instead; there is no cookie to check."""

    def set_default_headers(self) -> None:
        _private(self.set_header)

    def prepare(self) -> None:
        try:
            query = _query(self.request.query)
            wire.check_query(self.services.config.wechat.token, query, _now(self.services))
        except wire.WireError as refused:
            raise tornado.web.HTTPError(refused.status, refused.reason) from None

    def get(self) -> None:
        """The URL check: echo `echostr` once the signature holds."""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(self.get_query_argument("echostr", ""))


class Front(httputil.HTTPServerConnectionDelegate):
    """The server's delegate: POST /wechat answered here, every other request by `app`."""

    def __init__(self, app: tornado.web.Application):
        self.app = app

    def start_request(self, server_conn, request_conn) -> httputil.HTTPMessageDelegate:
        return _Request(self.app, server_conn, request_conn)

    def on_close(self, server_conn) -> None:
        self.app.on_close(server_conn)


class _Request(httputil.HTTPMessageDelegate):
    """One request on a connection: a push, or the Application's delegate for anything else."""

    def __init__(self, app: tornado.web.Application, server_conn, conn):
        self.app, self.server_conn, self.conn = app, server_conn, conn
        self.inner: httputil.HTTPMessageDelegate | None = None

    def headers_received(self, start_line, headers):
        path, _, query = start_line.path.partition("?")
        if start_line.method != "POST" or path != PATH:
            self.inner = self.app.start_request(self.server_conn, self.conn)
            return self.inner.headers_received(start_line, headers)
        self.query, self.chunks, self.started = query, [], time.monotonic()
        return None

    def data_received(self, chunk: bytes):
        if self.inner is not None:
            return self.inner.data_received(chunk)
        self.chunks.append(chunk)  # the server refuses a body over its max_body_size unread
        return None

    def finish(self) -> None:
        if self.inner is not None:
            return self.inner.finish()
        inflight = self.app.settings["inflight"]  # a stopping server waits for it (app.serve)
        inflight[0] += 1
        self.task = asyncio.get_running_loop().create_task(self._answer(inflight))
        return None

    def on_connection_close(self) -> None:
        if self.inner is not None:
            self.inner.on_connection_close()

    async def _answer(self, inflight: list[int]) -> None:
        settings = self.app.settings
        try:
            try:
                status, refusal, body = await _push(
                    settings["services"], settings["crypt"], self.query, b"".join(self.chunks)
                )
            except Exception:
                log.error("request crashed", extra={"method": "POST", "path": PATH}, exc_info=True)
                status, refusal, body = 500, "", b""
            self._respond(status, refusal, body)
        finally:
            inflight[0] -= 1  # answered: a stopping server may close the connection now

    def _respond(self, status: int, refusal: str, body: bytes) -> None:
        headers = httputil.HTTPHeaders()
        _private(headers.__setitem__)
        if status == 200:
            headers["Content-Type"] = "application/xml; charset=utf-8"
        else:
            headers["Content-Type"] = "text/plain; charset=utf-8"
            body = str(status).encode()
            request_failed(status, "POST", PATH, refusal, time.monotonic() - self.started)
        headers["Content-Length"] = str(len(body))
        headers["Date"] = _http_date()
        reason = httputil.responses.get(status, "Unknown")
        try:
            start = httputil.ResponseStartLine("HTTP/1.1", status, reason)
            self.conn.write_headers(start, headers, body)  # one send: head and body together
            self.conn.finish()
        except StreamClosedError:  # WeChat hung up first (its 5 s are up): it will ask again
            pass


async def _push(services: Services, crypt, query_text: str, body: bytes) -> tuple[int, str, bytes]:
    """A push's answer: (status, why it was refused, the reply's bytes)."""
    now = _now(services)
    try:
        query = _query(query_text)
        wire.check_query(services.config.wechat.token, query, now)
        if len(body) > MAX_BODY:
            return 413, "body too large", b""
        msg = wire.incoming(wire.open_push(body, query, crypt))
    except wire.WireError as refused:
        return refused.status, refused.reason, b""
    # Safe mode's msg_signature covers the body; plaintext mode's needs the replay guard.
    guard = None if crypt else (query["timestamp"], query["nonce"])
    started = time.perf_counter()
    try:
        reply = await services.db.write(_handle, services, msg, guard, body)
    except pushes.Replayed:
        return 403, "replayed nonce with another body", b""
    except Exception:  # nothing was kept (the message's transaction rolled back)
        log.exception("message failed", extra={"user": logs.hashed(msg.openid)})
        # An apology now beats WeChat's "该公众号暂时无法提供服务"; its retry runs it anew.
        reply = Text(services.renderer.text("chat/sorry.txt"))
    answer = wire.write_reply(reply, msg, crypt, int(now))
    metrics.handled(msg.kind, type(reply).__name__, time.perf_counter() - started)
    # At debug level: /metrics counts every message; a line each would cost more than it
    # tells at thousands a second (`[server]` logs at info; debug shows them).
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "message handled",
            extra={
                "kind": msg.kind,
                "wechat_event": msg.event,
                "user": logs.hashed(msg.openid),
                "reply": type(reply).__name__,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
    return 200, "", answer.encode()


def _handle(services: Services, msg, guard: tuple[str, str] | None, body: bytes):
    """One transaction: the replay guard, then the chat (on the database's writer)."""
    return services.chat.handle(msg, guard and pushes.guard(*guard, body))


def _now(services: Services) -> float:
    """Unix time on the bot's clock, which tests move forward."""
    return time.time() + services.clock.offset.total_seconds()


def _query(text: str) -> dict[str, str]:
    """The query's last value of each name, as text (a malformed one: 400)."""
    try:
        fields = parse_qs_bytes(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise wire.WireError(400, "malformed query") from None
    return {k: v[-1].decode("utf-8", "replace") for k, v in fields.items()}


def _private(set_header) -> None:
    """XML for WeChat's servers: the pages' browser policies have nothing to guard here, but a
    reply may repeat a name, a phone and an address (a form's summary): never stored."""
    set_header("Cache-Control", "private, no-store")
    set_header("X-Content-Type-Options", "nosniff")


_date: list = [0, ""]  # (the second, its HTTP date): one format a second, not one a reply


def _http_date() -> str:
    second = int(time.time())
    if _date[0] != second:
        _date[:] = second, httputil.format_timestamp(second)  # as a RequestHandler writes it
    return _date[1]
