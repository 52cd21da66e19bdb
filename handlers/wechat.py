"""`/wechat`: WeChat's callback. GET is the URL check, POST a message or event.

The signature (and in safe mode `msg_signature`, then decryption) is checked in
`prepare()`, before anything reads the body: a forged request is refused with
403 and touches nothing. Malformed XML, a wrong AppID or a DOCTYPE with
entities is a 400. WeRoBot parses the XML and renders (and encrypts) replies;
the meaning of a message is `bot.chat`'s business.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import tornado.web
from werobot.crypto import MessageCrypt
from werobot.parser import parse_xml
from werobot.replies import Article, ArticlesReply, SuccessReply, TextReply

from bot.chat import Incoming
from bot.replies import Card, Reply, Text
from handlers.web.base import BaseHandler

log = logging.getLogger("gift_bot.wechat")

MAX_CLOCK_SKEW = 300  # seconds; an older signed request is a replay
MAX_BODY = 64 * 1024


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


class WeChatHandler(BaseHandler):
    """WeChat's callback URL."""

    def check_xsrf_cookie(self) -> None:
        """WeChat signs its requests instead; there is no cookie to check."""

    def prepare(self) -> None:
        args = {k: self.get_query_argument(k, "") for k in ("signature", "timestamp", "nonce")}
        expected = signature(self.services.config.wechat.token, args["timestamp"], args["nonce"])
        if not hmac.compare_digest(expected, args["signature"]):
            raise tornado.web.HTTPError(403, "bad signature")
        if (
            not args["timestamp"].isdigit()
            or abs(time.time() - int(args["timestamp"])) > MAX_CLOCK_SKEW
        ):
            raise tornado.web.HTTPError(403, "stale timestamp")
        self.timestamp, self.nonce = args["timestamp"], args["nonce"]
        if self.request.method == "POST":
            self.xml = self._plain_body()

    def get(self) -> None:
        """The URL check: echo `echostr` once the signature holds."""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(self.get_query_argument("echostr", ""))

    async def post(self) -> None:
        """A message or event: one reply, in the mode it came in."""
        started = time.perf_counter()
        msg = self._incoming()
        try:
            reply = await self.blocking(self.services.chat.handle, msg)
        except Exception:  # nothing was kept (the message's transaction rolled back)
            log.exception("message failed", extra={"user": self.hashed(msg.openid)})
            # An apology now beats WeChat's "该公众号暂时无法提供服务"; its retry runs it anew.
            reply = Text(self.services.renderer.text("chat/sorry.txt"))
        body = self._render(reply, msg)
        self.set_header("Content-Type", "application/xml; charset=utf-8")
        self.finish(body)
        log.info(
            "message handled",
            extra={
                "kind": msg.kind,
                "event": msg.event,
                "user": self.hashed(msg.openid),
                "reply": type(reply).__name__,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )

    # -- the steps ---------------------------------------------------------

    def _plain_body(self) -> str:
        body = self.request.body
        if len(body) > MAX_BODY:
            raise tornado.web.HTTPError(413)
        crypt = self.settings["crypt"]
        encrypted = self.get_query_argument("encrypt_type", "raw") == "aes"
        if crypt is None:
            if encrypted:
                raise tornado.web.HTTPError(400, "safe mode message, but no encoding_aes_key set")
            return self._xml_dict(body)
        if not encrypted:
            raise tornado.web.HTTPError(400, "plaintext message in safe mode")
        encrypt = self._xml_dict(body).get("Encrypt")
        if not isinstance(encrypt, str):
            raise tornado.web.HTTPError(400, "no Encrypt element")
        msg_signature = self.get_query_argument("msg_signature", "")
        if not hmac.compare_digest(
            signature(crypt.token, self.timestamp, self.nonce, encrypt), msg_signature
        ):
            raise tornado.web.HTTPError(403, "bad msg_signature")
        try:
            xml = crypt.prp_crypto.decrypt(encrypt, crypt.app_id)
        except Exception:  # bad base64, padding or AppID: all "not from WeChat for us"
            raise tornado.web.HTTPError(400, "cannot decrypt") from None
        return self._xml_dict(xml)

    @staticmethod
    def _xml_dict(raw: bytes | str) -> dict:
        try:
            parsed = parse_xml(raw)
        except Exception:  # expat errors, DOCTYPE entities (xmltodict's ValueError), no <xml>
            raise tornado.web.HTTPError(400, "malformed XML") from None
        if not isinstance(parsed, dict):
            raise tornado.web.HTTPError(400, "malformed XML")
        return parsed

    def _incoming(self) -> Incoming:
        x = self.xml
        openid, kind, created = x.get("FromUserName"), x.get("MsgType"), x.get("CreateTime")
        valid = (
            isinstance(openid, str)
            and 0 < len(openid) <= 64
            and isinstance(kind, str)
            and isinstance(created, str)
            and created.isdigit()
        )
        if not valid:
            raise tornado.web.HTTPError(400, "missing FromUserName, MsgType or CreateTime")
        event = x.get("Event") if kind == "event" else ""
        return Incoming(
            openid=openid,
            account=_text(x.get("ToUserName")),
            kind=kind.lower(),
            create_time=int(created),
            msg_id=_text(x.get("MsgId")),
            text=_text(x.get("Content")),
            event=_text(event).lower(),
            event_key=_text(x.get("EventKey")),
            label=_text(x.get("Label")),
        )

    def _render(self, reply: Reply, msg: Incoming) -> str:
        if reply is None:
            return "success"
        # WeRoBot writes `target` into ToUserName: the reply goes to the sender, from the account.
        source = {"source": cdata(msg.account), "target": cdata(msg.openid)}
        if isinstance(reply, Text):
            xml = TextReply(content=cdata(reply.content), **source).render()
        elif isinstance(reply, Card):
            xml = ArticlesReply(**source)
            xml.add_article(
                Article(
                    title=cdata(reply.title),
                    description=cdata(reply.description),
                    img=cdata(reply.picurl),
                    url=cdata(reply.url),
                )
            )
            xml = xml.render()
        else:
            xml = SuccessReply().render()
        crypt = self.settings["crypt"]
        return crypt.encrypt_message(xml) if crypt else xml


def cdata(text: str) -> str:
    """Text safe inside WeRoBot's `<![CDATA[…]]>`: a `]]>` typed by a user must not end it."""
    return text.replace("]]>", "]]]]><![CDATA[>")


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def make_crypt(config) -> MessageCrypt | None:
    w = config.wechat
    return MessageCrypt(w.token, w.encoding_aes_key, w.app_id) if w.encoding_aes_key else None
