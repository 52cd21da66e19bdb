"""The /dev sandbox: chat with the bot as any OpenID, and open its links as that user.

    GET  /dev                  the chat page
    POST /dev/send             {"openid", "kind": text|click|subscribe|scan|location, "text"|"key"|"label"}
                               → signed (and in safe mode encrypted) like WeChat, POSTed to /wechat
    GET  /dev/inbox?after=N    SMS and WeChat messages the bot sent since N
    GET  /dev/as?openid=…&next=/claim/…   be that user on the pages (stands in for OAuth)
    GET  /dev/login?next=…     ask which OpenID to be, then /dev/as

Mounted only with `[server] sandbox = true`, which config refuses unless
`public_url` is a loopback address. The messages go through the real callback,
over HTTP, with the real signature check.
"""

from __future__ import annotations

import json
import secrets
import time
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from werobot.parser import parse_xml

from handlers.web.base import BaseHandler
from handlers.web.oauth import safe_next
from handlers.wechat import signature

KINDS = ("text", "click", "subscribe", "scan", "location")
ACCOUNT = "gh_sandbox"


class DevPage(BaseHandler):
    """The sandbox chat page."""

    def get(self) -> None:
        self.render_page("pages/dev.html", menu=self.services.config.menu.button)


class DevSend(BaseHandler):
    """One message from the chosen user, delivered to /wechat as WeChat would."""

    async def post(self) -> None:
        try:
            data = json.loads(self.request.body)
            openid, kind = data["openid"].strip(), data["kind"]
        except (ValueError, KeyError, AttributeError):
            raise tornado.web.HTTPError(400, "expected JSON with openid and kind") from None
        if kind not in KINDS or not 0 < len(openid) <= 64:
            raise tornado.web.HTTPError(400, "unknown kind or bad openid")
        xml = wechat_xml(openid, kind, data)
        reply = await self.deliver(xml)
        self.finish({"reply": reply})

    async def deliver(self, xml: str) -> dict:
        config = self.services.config
        crypt = self.settings["crypt"]
        query = {"timestamp": str(int(time.time())), "nonce": secrets.token_hex(5)}
        query["signature"] = signature(config.wechat.token, query["timestamp"], query["nonce"])
        body = xml
        if crypt:
            encrypt = crypt.prp_crypto.encrypt(xml, crypt.app_id).decode()
            query |= {
                "encrypt_type": "aes",
                "msg_signature": signature(
                    crypt.token, query["timestamp"], query["nonce"], encrypt
                ),
            }
            body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        url = f"http://127.0.0.1:{self.settings['port']}/wechat?{urlencode(query)}"
        try:
            response = await AsyncHTTPClient().fetch(
                url, method="POST", body=body, request_timeout=10
            )
        except HTTPClientError as exc:
            return {"type": "error", "content": f"HTTP {exc.code}"}
        text = response.body.decode()
        if text == "success":
            return {"type": "none"}
        reply = parse_xml(text)
        if crypt:
            reply = parse_xml(crypt.prp_crypto.decrypt(reply["Encrypt"], crypt.app_id))
        if reply["MsgType"] == "text":
            return {"type": "text", "content": reply["Content"]}
        item = reply["Articles"]["item"]
        return {
            "type": "card",
            "title": item["Title"],
            "description": item["Description"],
            "picurl": item["PicUrl"],
            "url": item["Url"],
        }


class DevInbox(BaseHandler):
    """What the bot sent out (SMS, customer-service messages), newest last."""

    def get(self) -> None:
        after = int(self.get_query_argument("after", "0") or 0)
        self.finish({"items": self.services.inbox.since(after)})


class DevAs(BaseHandler):
    """Be this OpenID on the bot's pages, then go on."""

    def get(self) -> None:
        openid = self.get_query_argument("openid", "").strip()
        if not 0 < len(openid) <= 64:
            raise tornado.web.HTTPError(400, "openid required")
        self.remember(openid)
        self.redirect(safe_next(self.get_query_argument("next", "/dev")))


class DevLogin(BaseHandler):
    """The sandbox's OAuth consent page: choose who you are."""

    def get(self) -> None:
        self.render_page(
            "pages/dev_login.html", next=safe_next(self.get_query_argument("next", "/"))
        )


def wechat_xml(openid: str, kind: str, data: dict) -> str:
    """The XML WeChat would push for this action."""
    now = int(time.time())
    head = (
        f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{escape(openid)}]]></FromUserName><CreateTime>{now}</CreateTime>"
    )
    if kind == "text":
        msg_id = secrets.randbelow(2**63)
        content = escape(str(data.get("text", "")))
        return f"<xml>{head}<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    if kind == "location":
        label = escape(str(data.get("label", "")))
        return (
            f"<xml>{head}<MsgType><![CDATA[location]]></MsgType><Location_X>22.54</Location_X>"
            f"<Location_Y>113.95</Location_Y><Scale>15</Scale><Label><![CDATA[{label}]]></Label>"
            f"<MsgId>{secrets.randbelow(2**63)}</MsgId></xml>"
        )
    event = {"click": "CLICK", "subscribe": "subscribe", "scan": "SCAN"}[kind]
    key = escape(str(data.get("key", "")))
    if kind == "subscribe" and key:
        key = f"qrscene_{key}"
    return f"<xml>{head}<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey></xml>"
