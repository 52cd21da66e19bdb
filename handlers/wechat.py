"""`/wechat`: WeChat's callback. GET is the URL check, POST a message or event.

The signature (and in safe mode `msg_signature`, then decryption) is checked in
`prepare()`, before anything reads the body: a forged request is refused with
403 and touches nothing. In plaintext mode the signature does not cover the
body, so a used (timestamp, nonce) with another body is a replay: 403. Malformed
XML, a wrong AppID, a DTD or a body not in UTF-8 is a 400. The wire format both
ways is `handlers/wire.py`'s; the meaning of a message is `bot.chat.chat`'s business.
"""

from __future__ import annotations

import logging
import time

import tornado.web

from bot import metrics
from bot.chat import pushes
from bot.replies import Text
from handlers import wire
from handlers.web.base import BaseHandler

log = logging.getLogger("gift_bot.wechat")

MAX_BODY = 64 * 1024


class WeChatHandler(BaseHandler):
    """WeChat's callback URL."""

    def check_xsrf_cookie(self) -> None:
        """WeChat signs its requests instead; there is no cookie to check."""

    def set_default_headers(self) -> None:
        """XML for WeChat's servers: the pages' browser policies have nothing to guard here, but
        a reply may repeat a name, a phone and an address (a form's summary): never stored."""
        self.set_header("Cache-Control", "private, no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def prepare(self) -> None:
        query = {
            k: v[-1].decode("utf-8", "replace") for k, v in self.request.query_arguments.items()
        }
        try:
            self.now = time.time() + self.services.clock.offset.total_seconds()  # tests move it
            wire.check_query(self.services.config.wechat.token, query, self.now)
            if self.request.method != "POST":
                return
            if len(self.request.body) > MAX_BODY:
                raise tornado.web.HTTPError(413)
            self.fields = wire.open_push(self.request.body, query, self.settings["crypt"])
            self.msg = wire.incoming(self.fields)
        except wire.WireError as refused:
            raise tornado.web.HTTPError(refused.status, refused.reason) from None
        # Safe mode's msg_signature covers the body; plaintext mode's needs the replay guard.
        self.guard = None if self.settings["crypt"] else (query["timestamp"], query["nonce"])

    def _handle(self, msg, guard: tuple[str, str] | None, body: bytes):
        """One transaction: the replay guard, then the chat (on the database's writer)."""
        return self.services.chat.handle(msg, guard and pushes.guard(*guard, body))

    def get(self) -> None:
        """The URL check: echo `echostr` once the signature holds."""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(self.get_query_argument("echostr", ""))

    async def post(self) -> None:
        """A message or event: one reply, in the mode it came in."""
        started = time.perf_counter()
        msg = self.msg
        try:
            reply = await self.services.db.write(self._handle, msg, self.guard, self.request.body)
        except pushes.Replayed:
            raise tornado.web.HTTPError(403, "replayed nonce with another body") from None
        except Exception:  # nothing was kept (the message's transaction rolled back)
            log.exception("message failed", extra={"user": self.hashed(msg.openid)})
            # An apology now beats WeChat's "该公众号暂时无法提供服务"; its retry runs it anew.
            reply = Text(self.services.renderer.text("chat/sorry.txt"))
        answer = wire.write_reply(reply, msg, self.settings["crypt"], int(self.now))
        metrics.handled(msg.kind, type(reply).__name__, time.perf_counter() - started)
        # At debug level: /metrics counts every message; a line each would cost more than it
        # tells at thousands a second (`[server]` logs at info; debug shows them).
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "message handled",
                extra={
                    "kind": msg.kind,
                    "wechat_event": msg.event,
                    "user": self.hashed(msg.openid),
                    "reply": type(reply).__name__,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
        self.set_header("Content-Type", "application/xml; charset=utf-8")
        self.finish(answer)
