"""The /dev sandbox: chat with the bot as any OpenID, and open its links as that user.

    GET  /dev                  the chat page
    POST /dev/send             {"openid", "kind": text|click|subscribe|scan|location|image|voice,
                                "text"|"key"|"label"|"media_id" (a voice: "text" its words)}
                               → signed (and in safe mode encrypted) like WeChat, POSTed to /wechat
    POST /dev/upload           a picture or voice's bytes (its Content-Type) → {"media_id"}: kept
                               as WeChat keeps a user's media, for the stand-in of getMedia
    GET  /dev/inbox?after=N    SMS and WeChat messages the bot sent since N
    GET  /dev/as?openid=…&next=/claim/…   be that user on the pages (stands in for OAuth);
                               another user than the browser's asks first (switch=1 chose)
    GET  /dev/login?next=…     ask which OpenID to be, then /dev/as
    POST /dev/draw/<token>     立即开奖: draw this draw now, as the sweep would at its time

Mounted only with `[server] sandbox = true`, which config refuses unless
`public_url` is a loopback address. The messages go through the real callback,
over HTTP, with the real signature check.
"""

from __future__ import annotations

import json
import secrets
import time
from urllib.parse import urlencode

import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from bot import sandbox
from bot.config import is_loopback_host
from bot.gifting import draws
from handlers import wire, wire_peer
from handlers.web.base import BaseHandler
from handlers.web.oauth import safe_next

KINDS = ("text", "click", "subscribe", "scan", "location", "image", "voice")
ACCOUNT = "gh_sandbox"


class DevHandler(BaseHandler):
    """Every /dev page: for this machine only, whatever a proxy or a DNS name says.

    The sandbox logs in as anyone and shows the SMS it sent, so the socket's peer must be a
    loopback address (not X-Real-IP, which a client can write) and the Host a local name (a
    page of another site that rebinds its DNS name to 127.0.0.1 gets no answer).
    """

    def prepare(self) -> None:
        super().prepare()
        peer = self.request.connection.context.address
        if not (isinstance(peer, tuple) and is_loopback_host(peer[0])):
            raise tornado.web.HTTPError(403, "the sandbox answers this machine only")
        if not is_loopback_host(self.request.host_name):
            raise tornado.web.HTTPError(403, "the sandbox answers local host names only")


class DevPage(DevHandler):
    """The sandbox chat page."""

    def get(self) -> None:
        self.render_page("pages/dev.html", menu=self.services.config.menu.button)


class DevSend(DevHandler):
    """One message from the chosen user, delivered to /wechat as WeChat would."""

    async def post(self) -> None:
        try:
            data = json.loads(self.request.body)
            openid, kind = data["openid"].strip(), data["kind"]
        except (ValueError, KeyError, AttributeError):
            raise tornado.web.HTTPError(400, "expected JSON with openid and kind") from None
        if kind not in KINDS or not 0 < len(openid) <= 64:
            raise tornado.web.HTTPError(400, "unknown kind or bad openid")
        if kind in ("image", "voice") and not str(data.get("media_id") or "").strip():
            raise tornado.web.HTTPError(400, "a picture or voice needs its media_id (/dev/upload)")
        fields = push_fields(openid, kind, data, int(self.now()))
        self.finish({"reply": await self.deliver(fields)})

    def now(self) -> float:
        """WeChat's time as the callback sees it (the bot's clock, which tests move)."""
        return time.time() + self.services.clock.offset.total_seconds()

    async def deliver(self, fields: dict) -> dict:
        """POST the push to the real callback and read the answer as WeChat would."""
        config, crypt = self.services.config, self.settings["crypt"]
        xml = wire_peer.push_xml(fields)
        query, body = wire_peer.seal_push(xml, config.wechat.token, crypt, self.now(), ACCOUNT)
        url = f"http://127.0.0.1:{self.settings['port']}/wechat?{urlencode(query)}"
        try:
            response = await AsyncHTTPClient().fetch(
                url, method="POST", body=body, request_timeout=10
            )
        except HTTPClientError as exc:
            return {"type": "error", "content": f"HTTP {exc.code}"}
        msg = wire.incoming(wire.parse(xml))
        opened = wire_peer.open_reply(response.body.decode(), msg, crypt, self.now())
        shown = as_shown(opened.fields)
        if opened.problems:  # the page shows it in red: on WeChat nobody would see it
            shown["dropped"] = list(opened.problems)
        return shown


def as_shown(reply: dict | None) -> dict:
    """A reply's fields as the sandbox page draws them."""
    if reply is None:
        return {"type": "none"}
    if reply.get("MsgType") == "text":
        return {"type": "text", "content": reply.get("Content") or ""}
    if reply.get("MsgType") == "transfer_customer_service":
        return {"type": "transfer"}
    if reply.get("MsgType") == "news":
        items = (reply.get("Articles") or {}).get("item") or {}
        item = items[0] if isinstance(items, list) else items
        return {
            "type": "card",
            "title": item.get("Title") or "",
            "description": item.get("Description") or "",
            "picurl": item.get("PicUrl") or "",
            "url": item.get("Url") or "",
        }
    return {"type": "error", "content": f"MsgType {reply.get('MsgType')!r}"}


class DevInbox(DevHandler):
    """What the bot sent out (SMS, customer-service messages), newest last."""

    def get(self) -> None:
        after = int(self.get_query_argument("after", "0") or 0)
        self.finish({"items": self.services.inbox.since(after)})


@tornado.web.stream_request_body
class DevUpload(DevHandler):
    """A picture or voice the sandbox's page sends as the chosen user: kept as WeChat keeps
    a user's media (bot/sandbox.py), its media_id back for the push that carries it."""

    def prepare(self) -> None:
        super().prepare()
        self.request.connection.set_max_body_size(sandbox.MAX_UPLOAD)  # above pages' 64 KB
        self.body = bytearray()

    def data_received(self, chunk: bytes) -> None:
        self.body.extend(chunk)

    def post(self) -> None:
        kind = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind not in sandbox.UPLOAD_TYPES or not self.body:
            raise tornado.web.HTTPError(400, "a picture or voice's bytes, with its Content-Type")
        media_id = sandbox.keep_upload(self.services.config.media.dir, bytes(self.body), kind)
        self.finish({"media_id": media_id})


class DevAs(DevHandler):
    """Be this OpenID on the bot's pages, then go on; when the browser is someone else
    already, only once that is chosen (`switch=1`): other open pages would change with it."""

    def get(self) -> None:
        openid = self.get_query_argument("openid", "").strip()
        if not 0 < len(openid) <= 64:
            raise tornado.web.HTTPError(400, "openid required")
        goes_on = safe_next(self.get_query_argument("next", "/dev"))
        chosen = self.get_query_argument("switch", "") == "1"
        if self.current_user and self.current_user != openid and not chosen:
            switch = f"/dev/as?{urlencode({'openid': openid, 'next': goes_on, 'switch': 1})}"
            return self.render_page(
                "pages/dev_switch.html", wanted=openid, next=goes_on, switch=switch
            )
        self.remember(openid)
        self.redirect(goes_on)


class DevDraw(DevHandler):
    """立即开奖: the draw drawn now by the sweep's own code (bot/gifting/draws.py), then its
    page; its winners' messages leave at once."""

    async def post(self, token: str) -> None:
        services = self.services
        if await services.db.write(draws.draw_now, services.notices, token, services.now()):
            services.worker.wake.set()
        self.redirect(f"/claim/{token}", status=303)


class DevLogin(DevHandler):
    """The sandbox's OAuth consent page: choose who you are."""

    def get(self) -> None:
        self.render_page(
            "pages/dev_login.html", next=safe_next(self.get_query_argument("next", "/"))
        )


def push_fields(openid: str, kind: str, data: dict, now: int) -> dict[str, str | int]:
    """The fields WeChat would push for this action, in WeChat's order."""
    head = {"ToUserName": ACCOUNT, "FromUserName": openid, "CreateTime": now}
    if kind == "text":
        return head | {
            "MsgType": "text",
            "Content": str(data.get("text", "")),
            "MsgId": secrets.randbelow(2**63),
        }
    if kind == "image":  # PicUrl: WeChat's copy on its CDN, which the bot does not read
        return head | {
            "MsgType": "image",
            "PicUrl": "https://mmbiz.qpic.cn/sandbox/0",
            "MediaId": str(data.get("media_id", "")),
            "MsgId": secrets.randbelow(2**63),
        }
    if kind == "voice":
        words = str(data.get("text", ""))
        return head | {
            "MsgType": "voice",
            "MediaId": str(data.get("media_id", "")),
            "Format": "amr",
            **({"Recognition": words} if words else {}),
            "MsgId": secrets.randbelow(2**63),
        }
    if kind == "location":
        return head | {
            "MsgType": "location",
            "Location_X": "22.54",
            "Location_Y": "113.95",
            "Scale": 15,
            "Label": str(data.get("label", "")),
            "MsgId": secrets.randbelow(2**63),
        }
    event = {"click": "CLICK", "subscribe": "subscribe", "scan": "SCAN"}[kind]
    key = str(data.get("key", ""))
    if kind == "subscribe" and key:
        key = f"qrscene_{key}"
    return head | {"MsgType": "event", "Event": event, "EventKey": key}
