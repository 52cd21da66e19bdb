"""A fake of WeChat's server API and web OAuth, on a real local socket.

Usage::

    with FakeWeChat() as fake:                  # 127.0.0.1:<free port>, served from its own thread
        api = WeChatApi(fake.config())          # api_base = oauth_base = fake.url
        asyncio.run(api.send_text("o_alice", "你好"))
        fake.messages                           # [{"touser": "o_alice", "msgtype": "text", ...}]
        fake.fail_next("/cgi-bin/message/custom/send", 45015)   # the next send is refused
        fake.fail_next("/cgi-bin/qrcode/create", status=502)    # ... or the gateway falls over
        fake.expire_token()                     # every token dies; APIs answer 40001
        fake.set_user("o_bob")                  # who holds the phone on the consent page
        fake.add_media("MEDIA_ID", jpeg_bytes, "image/jpeg")   # a picture a user sent
        fake.clock = lambda: unix_seconds       # media expire 3 days after they were added
        fake.subscribed                         # one-time subscription messages sent, each with
                                                # where it showed: "chat" (a follower) or 服务通知

One-time subscriptions (一次性订阅消息) are played from the official docs ("One-time_subscription_info",
developers.weixin.qq.com/doc/service/guide/product/message/One-time_subscription_info.html, and
"发送一次性订阅消息", …/doc/service/api/notify/subscribe/api_templatesubscribe.html): the page
`/mp/subscribemsg?action=get_confirm&appid&scene&template_id&redirect_url&reserved#wechat_redirect`
asks the phone's user (set_user; `consents=False` taps 取消) and redirects to redirect_url with
openid (on a confirmation only), template_id, action, scene and reserved; each confirmation allows
one message, and confirmations under one scene do not add up. `/cgi-bin/message/template/subscribe`
takes touser, template_id, url?, scene, title (15 characters at most) and data.content.value (200
at most); a touser holding no unused confirmation for that template and scene gets 43101 (as
WeChat answers a refused or used one), an unknown template 40037, a missing or bad field 47003
naming it (the docs give the limits; the community's reports give the codes).

The server runs its own event loop in a background thread, so synchronous
test code and code under test in `asyncio.run(...)` can both reach it. It
checks what WeChat checks (appid/secret, token, menu limits, `\\uXXXX`
escapes, one-time OAuth codes) and records every request in `calls`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from bot.config import WeChat

APP_ID = "wx0fake0app0id0000"
APP_SECRET = "fake-app-secret"
SUBSCRIBE_TEMPLATE = "1uDxHNXwYQfBmXOfPJcjAS3FynHArD8aWMEFNRGSbCc"  # the docs' example id
SCENE_MAX = 10_000
TITLE_MAX, CONTENT_MAX = 15, 200
TOKEN_SECONDS = 7200
STABLE_RENEW_SECONDS = 300  # stable_token hands out a new token in the last 5 minutes
CODE_SECONDS = 300
QR_MAX_SECONDS = 2_592_000
CLICK_TYPES = {"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_weixin"}
MEDIA_SECONDS = 3 * 86400  # temporary media live 3 days
MEDIA_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
             "audio/amr": "amr", "audio/speex": "speex"}  # fmt: skip
_ESCAPE = re.compile(rb"\\u([0-9a-fA-F]{4})")
_OK = {"errcode": 0, "errmsg": "ok"}

Response = tuple[int, dict[str, str], bytes]


class Refusal(Exception):
    """Raised as `Refusal(errcode, errmsg)`: what the fake answers instead of a result."""


@dataclass
class _Grant:
    """What a one-time OAuth code stands for."""

    openid: str
    scope: str
    expires: float
    used: bool = False


class FakeWeChat:
    """WeChat's API and OAuth for one account, with knobs to make it misbehave."""

    def __init__(self, app_id: str = APP_ID, app_secret: str = APP_SECRET):
        self.app_id, self.app_secret = app_id, app_secret
        self.url = ""
        self.calls: list[tuple[str, dict[str, str], Any]] = []
        self.messages: list[dict] = []
        self.templates: list[dict] = []  # template messages sent
        self.template_ids: set[str] = {"TPL_gift_notice"}  # the account's templates
        self.subscribe_template_id = SUBSCRIBE_TEMPLATE  # its one-time subscription template
        self.grants: dict[tuple[str, str, int], int] = {}  # (openid, template, scene) → unused
        self.subscribed: list[dict] = []  # one-time subscription messages sent
        self.unfollowed: set[str] = set()  # openids that are not (or no longer) followers
        self.followers: set[str] = set()  # known followers (a subscription shows in their chat)
        self.menus: list[dict] = []
        self.qrcodes: list[dict] = []
        self.token_fetches = 0
        self.user: str | None = None
        self.consents = True
        self.media: dict[str, tuple[bytes, str, float]] = {}  # media_id → (body, type, added)
        self.clock = time.time  # when media expire: tests set the bot's clock
        self._tokens: dict[str, float] = {}  # every live token -> monotonic expiry
        self.current_token: str | None = None  # what stable_token hands back
        self._codes: dict[str, _Grant] = {}
        self._failures: dict[str, list[tuple[int, int, str | None]]] = {}
        self._slow: dict[str, float] = {}  # path → seconds its next answer waits
        self._lock = threading.RLock()  # knobs run in the test's thread, requests in ours
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._routes = {
            "/cgi-bin/stable_token": (self._stable_token, False),
            "/cgi-bin/token": (self._token, False),
            "/cgi-bin/menu/create": (self._menu_create, True),
            "/cgi-bin/message/custom/send": (self._custom_send, True),
            "/cgi-bin/message/template/send": (self._template_send, True),
            "/cgi-bin/message/template/subscribe": (self._subscribe_send, True),
            "/mp/subscribemsg": (self._subscribe_page, False),
            "/cgi-bin/qrcode/create": (self._qrcode_create, True),
            "/cgi-bin/media/get": (self._media_get, True),
            "/connect/oauth2/authorize": (self._authorize, False),
            "/sns/oauth2/access_token": (self._oauth_token, False),
        }

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> FakeWeChat:
        sockets = bind_sockets(0, "127.0.0.1")
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        ready = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(sockets, ready),), name="FakeWeChat", daemon=True
        )
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError("FakeWeChat did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._stopping and self._thread:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(5)
        self._loop = self._thread = None

    def __enter__(self) -> FakeWeChat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, sockets: list, ready: threading.Event) -> None:
        server = HTTPServer(Application([(r"(/.*)", _Handler, {"fake": self})]))
        server.add_sockets(sockets)
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await self._stopping.wait()
        server.stop()
        await server.close_all_connections()

    def config(self, **overrides: Any) -> WeChat:
        """A `[wechat]` config pointing every base URL at this fake."""
        base = {"token": "faketoken", "app_id": self.app_id, "app_secret": self.app_secret}
        bases = {"api_base": self.url, "oauth_base": self.url, "mp_base": self.url}
        return WeChat(**base | bases | overrides)

    # -- knobs -------------------------------------------------------------------

    def slow_next(self, path: str, seconds: float) -> None:
        """The next request to `path` is answered `seconds` late (a slow WeChat)."""
        with self._lock:
            self._slow[path] = seconds

    def fail_next(
        self, path: str, errcode: int = -1, *, status: int = 200, times: int = 1,
        to: str | None = None,
    ) -> None:  # fmt: skip
        """The next `times` requests to `path` get `errcode` (or HTTP `status` if not 200);
        with `to`, the next addressed to that `touser` (the outbox sends people's messages
        side by side, so which of them comes first is not fixed)."""
        with self._lock:
            self._failures.setdefault(path, []).extend([(errcode, status, to)] * times)

    def expire_token(self) -> None:
        """Every token dies now; stable_token mints a new one on its next call."""
        with self._lock:
            self._tokens.clear()
            self.current_token = None

    def set_user(self, openid: str | None, consents: bool = True) -> None:
        """Who is using the phone on the consent page, and whether they agree."""
        with self._lock:
            self.user, self.consents = openid, consents

    def add_media(self, media_id: str, body: bytes, content_type: str) -> None:
        """A picture or voice a user sent: WeChat keeps it 3 days (by `clock`) under media_id."""
        with self._lock:
            self.media[media_id] = (body, content_type, self.clock())

    def issue_code(self, openid: str, scope: str = "snsapi_base") -> str:
        """A one-time OAuth code, as the consent page would hand out."""
        with self._lock:
            code = secrets.token_urlsafe(12)
            self._codes[code] = _Grant(openid, scope, time.monotonic() + CODE_SECONDS)
            return code

    # -- dispatch ----------------------------------------------------------------

    def respond(self, path: str, query: dict[str, str], raw: bytes) -> Response:
        """One request in, one (status, headers, body) out; called by the server thread."""
        with self._lock:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            self.calls.append((path, query, body))
            if path not in self._routes:
                return _page(404, "no such endpoint")
            try:
                return _as_response(self._route(path, query, raw, body))
            except Refusal as refusal:
                errcode, errmsg = refusal.args
                return _as_response({"errcode": errcode, "errmsg": errmsg})

    def _route(self, path: str, query: dict, raw: bytes, body: Any) -> dict | Response:
        queued = self._failures.get(path)
        touser = body.get("touser") if isinstance(body, dict) else None
        matching = [i for i, (_, _, to) in enumerate(queued or []) if to in (None, touser)]
        if matching:
            errcode, status, _ = queued.pop(matching[0])
            if status != 200:
                return _page(status, "an outage injected by fail_next")
            raise Refusal(errcode, "injected by FakeWeChat.fail_next")
        handler, needs_token = self._routes[path]
        if needs_token:
            self._check_token(query.get("access_token"))
        if any(int(code, 16) > 0x7F for code in _ESCAPE.findall(raw)):
            raise Refusal(40033, "invalid charset. please check your request, \\uxxxx")
        if raw and body is None:
            raise Refusal(47001, "data format error")
        return handler(query, body or {})

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise Refusal(41001, "access_token missing")
        if self._tokens.get(token, 0) < time.monotonic():
            raise Refusal(40001, "invalid credential, access_token is invalid or not latest")

    def _check_app(self, appid: str | None, secret: str | None) -> None:
        if appid != self.app_id:
            raise Refusal(40013, "invalid appid")
        if secret != self.app_secret:
            raise Refusal(40125, "invalid appsecret")

    def _mint(self) -> str:
        token = secrets.token_urlsafe(96)
        self._tokens[token] = time.monotonic() + TOKEN_SECONDS
        return token

    # -- the API -----------------------------------------------------------------

    def _stable_token(self, query: dict, body: dict) -> dict:
        self._check_app(body.get("appid"), body.get("secret"))
        if body.get("grant_type") != "client_credential":
            raise Refusal(40002, "invalid grant_type")
        self.token_fetches += 1
        if body.get("force_refresh") and self.current_token:
            self._tokens.pop(self.current_token, None)  # force_refresh kills the old token at once
        left = self._tokens.get(self.current_token or "", 0) - time.monotonic()
        if left < STABLE_RENEW_SECONDS:
            self.current_token, left = self._mint(), TOKEN_SECONDS
        return {"access_token": self.current_token, "expires_in": int(left)}

    def _token(self, query: dict, body: dict) -> dict:
        self._check_app(query.get("appid"), query.get("secret"))
        self.token_fetches += 1
        return {"access_token": self._mint(), "expires_in": TOKEN_SECONDS}

    def _menu_create(self, query: dict, body: dict) -> dict:
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise Refusal(40016, "invalid button size")
        for button in buttons:
            subs = button.get("sub_button")
            _check_button(button, name_limit=16, leaf=not subs)
            if subs and (not isinstance(subs, list) or len(subs) > 5):
                raise Refusal(40017, "invalid sub button size")
            for sub in subs or []:
                _check_button(sub, name_limit=60, leaf=True)
        self.menus.append(body)
        return _OK

    def _custom_send(self, query: dict, body: dict) -> dict:
        if not body.get("touser"):
            raise Refusal(40003, "invalid openid")
        if body["touser"] in self.unfollowed:
            raise Refusal(43004, "require subscribe")
        msgtype = body.get("msgtype")
        if msgtype == "text":
            content = (body.get("text") or {}).get("content") or ""
            if not content:
                raise Refusal(44004, "empty content")
            if len(content.encode()) > 2048:
                raise Refusal(45002, "content size out of limit")
        elif msgtype == "news":
            articles = (body.get("news") or {}).get("articles") or []
            if len(articles) != 1:
                raise Refusal(45008 if articles else 44003, "one article, please")
        else:
            raise Refusal(40008, "invalid message type")
        self.messages.append(body)
        return _OK

    def _template_send(self, query: dict, body: dict) -> dict:
        """A template message (WECHAT.md §9): a known template, a follower, data of values."""
        touser = body.get("touser")
        if not touser:
            raise Refusal(40003, "invalid openid")
        if body.get("template_id") not in self.template_ids:
            raise Refusal(40037, "invalid template_id")
        if touser in self.unfollowed:
            raise Refusal(43004, "require subscribe")
        data = body.get("data")
        if not isinstance(data, dict) or not data:
            raise Refusal(47003, "argument invalid! data is empty")
        for item in data.values():
            if not isinstance(item, dict) or not isinstance(item.get("value"), str):
                raise Refusal(47003, "argument invalid! data.value invalid")
        url = body.get("url")
        if url is not None and not str(url).startswith(("http://", "https://")):
            raise Refusal(40054, "invalid url")
        self.templates.append(body)
        return {**_OK, "msgid": len(self.templates)}

    def _subscribe_send(self, query: dict, body: dict) -> dict:
        """A one-time subscription message: one per unused confirmation of (touser, template,
        scene); to a follower's chat, to anyone else's 服务通知."""
        touser = body.get("touser")
        if not isinstance(touser, str) or not touser:
            raise Refusal(40003, "invalid openid")
        template = body.get("template_id")
        if template != self.subscribe_template_id:
            raise Refusal(40037, "invalid template_id")
        scene = body.get("scene")
        if not isinstance(scene, str | int) or not str(scene).isdigit():
            raise Refusal(47003, "argument invalid! scene is empty or not a number")
        if not 0 <= int(scene) <= SCENE_MAX:
            raise Refusal(47003, "argument invalid! scene out of range 0-10000")
        title = body.get("title")
        if not isinstance(title, str) or not title:
            raise Refusal(47003, "argument invalid! title is empty")
        if len(title) > TITLE_MAX:
            raise Refusal(47003, "argument invalid! title is longer than 15 characters")
        data = body.get("data")
        content = (data or {}).get("content") if isinstance(data, dict) else None
        value = content.get("value") if isinstance(content, dict) else None
        if not isinstance(value, str) or not value:
            raise Refusal(47003, "argument invalid! data.content.value is empty")
        if len(value) > CONTENT_MAX:
            raise Refusal(47003, "argument invalid! data.content.value is longer than 200")
        url = body.get("url")
        if url is not None and not str(url).startswith(("http://", "https://")):
            raise Refusal(40054, "invalid url")
        held = (touser, template, int(scene))
        if not self.grants.get(held):
            raise Refusal(43101, "user refuse to accept the msg")
        self.grants[held] -= 1
        where = "chat" if touser in self.followers else "服务通知"
        self.subscribed.append({**body, "shown_in": where})
        return _OK

    def _subscribe_page(self, query: dict, body: dict) -> Response:
        """WeChat's page asking for one message: the phone's user confirms (or cancels)."""
        if query.get("action") != "get_confirm" or query.get("appid") != self.app_id:
            return _page(400, "action=get_confirm and the account's appid are required")
        if query.get("template_id") != self.subscribe_template_id:
            return _page(400, "not the account's one-time subscription template")
        scene = query.get("scene", "")
        if not scene.isdigit() or int(scene) > SCENE_MAX:
            return _page(400, "scene must be an integer 0-10000")
        reserved = query.get("reserved", "")
        if len(reserved.encode()) > 128 or (reserved and not reserved.isalnum()):
            return _page(400, "reserved is a-zA-Z0-9, at most 128 bytes")
        uri = query.get("redirect_url", "")
        if not uri.startswith(("http://", "https://")):
            return _page(400, "redirect_url is required")
        if self.user is None:
            return _page(400, "nobody holds the phone; call set_user()")
        back = {"template_id": query["template_id"], "scene": scene, "reserved": reserved}
        if self.consents:
            held = (self.user, query["template_id"], int(scene))
            self.grants[held] = 1  # confirmations under one scene do not add up
            back = {"openid": self.user, **back, "action": "confirm"}
        else:
            back = {**back, "action": "cancel"}
        return 302, {"Location": uri + ("&" if "?" in uri else "?") + urlencode(back)}, b""

    def grant(self, openid: str, scene: int, template: str | None = None) -> None:
        """`openid` confirmed once on WeChat's page (as if the page had asked)."""
        with self._lock:
            self.grants[(openid, template or self.subscribe_template_id, scene)] = 1

    def _qrcode_create(self, query: dict, body: dict) -> dict:
        scene = ((body.get("action_info") or {}).get("scene") or {}).get("scene_str") or ""
        if body.get("action_name") != "QR_STR_SCENE" or not 1 <= len(scene) <= 64:
            raise Refusal(40097, "invalid args")
        seconds = min(int(body.get("expire_seconds") or 60), QR_MAX_SECONDS)
        # Real tickets are base64 with + / =, which is why the image URL must quote them.
        ticket = "gQ" + base64.b64encode(secrets.token_bytes(30)).decode()
        url = f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)}"
        self.qrcodes.append({"ticket": ticket, "scene": scene, "expire_seconds": seconds})
        return {"ticket": ticket, "expire_seconds": seconds, "url": url}

    def _media_get(self, query: dict, body: dict) -> Response:
        """getMedia ("获取临时素材"): the file as an attachment, named after its media_id, or
        40007 for one WeChat does not have (never sent, or past its 3 days)."""
        media_id = query.get("media_id", "")
        kept = self.media.get(media_id)
        if kept is None or self.clock() - kept[2] > MEDIA_SECONDS:
            raise Refusal(40007, "invalid media_id")
        data, content_type, _ = kept
        return (
            200,
            {
                "Content-Type": content_type,
                "Content-disposition": f'attachment; filename="{media_id}.{MEDIA_EXT.get(content_type, "bin")}"',
                "Cache-Control": "no-cache, must-revalidate",
            },
            data,
        )

    # -- web OAuth ---------------------------------------------------------------

    def _authorize(self, query: dict, body: dict) -> Response:
        """The consent page: send the phone's user back to redirect_uri with a code."""
        if query.get("appid") != self.app_id:
            return _page(400, "unknown appid (10003 on the real page)")
        if query.get("response_type") != "code" or not query.get("redirect_uri"):
            return _page(400, "response_type=code and redirect_uri are required")
        scope = query.get("scope", "")
        if scope not in ("snsapi_base", "snsapi_userinfo"):
            return _page(400, "scope must be snsapi_base or snsapi_userinfo")
        openid = query.get("fake_openid") or self.user
        if openid is None:
            return _page(400, "nobody holds the phone; call set_user() or add fake_openid")
        back = {"state": query.get("state", "")}
        if self.consents:
            back = {"code": self.issue_code(openid, scope), **back}
        uri = query["redirect_uri"]
        return 302, {"Location": uri + ("&" if "?" in uri else "?") + urlencode(back)}, b""

    def _oauth_token(self, query: dict, body: dict) -> dict:
        self._check_app(query.get("appid"), query.get("secret"))
        if query.get("grant_type") != "authorization_code":
            raise Refusal(40002, "invalid grant_type")
        grant = self._codes.get(query.get("code", ""))
        if grant is None:
            raise Refusal(40029, "invalid code")
        if grant.used:
            raise Refusal(40163, "code been used")
        if grant.expires < time.monotonic():
            raise Refusal(42003, "code expired")
        grant.used = True
        tokens = {
            "access_token": secrets.token_urlsafe(32),
            "refresh_token": secrets.token_urlsafe(32),
        }
        return {**tokens, "expires_in": TOKEN_SECONDS, "openid": grant.openid, "scope": grant.scope}


class _Handler(RequestHandler):
    def initialize(self, fake: FakeWeChat) -> None:
        self.fake = fake

    async def get(self, path: str) -> None:
        with self.fake._lock:
            slow = self.fake._slow.pop("/" + path.lstrip("/"), 0)
        if slow:
            await asyncio.sleep(slow)
        query = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        status, headers, body = self.fake.respond(path, query, self.request.body)
        self.set_status(status)
        for name, value in headers.items():
            self.set_header(name, value)
        self.finish(body)

    post = get


def _page(status: int, text: str) -> Response:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, f"FakeWeChat: {text}".encode()


def _as_response(result: dict | Response) -> Response:
    if isinstance(result, tuple):
        return result
    body = json.dumps(result, ensure_ascii=False).encode()
    return 200, {"Content-Type": "application/json; charset=utf-8"}, body


def _check_button(button: dict, name_limit: int, leaf: bool) -> None:
    """WeChat's limits; a parent button (one with sub_buttons) needs only a name."""
    if not 1 <= len((button.get("name") or "").encode()) <= name_limit:
        raise Refusal(40018, f"invalid button name size (1-{name_limit} bytes)")
    kind = button.get("type")
    if not leaf:
        return
    if kind in CLICK_TYPES and not 1 <= len((button.get("key") or "").encode()) <= 128:
        raise Refusal(40019, "invalid button key size")
    if kind == "view" and not 1 <= len((button.get("url") or "").encode()) <= 1024:
        raise Refusal(40020, "invalid button url size")
    if kind == "view" and not button["url"].startswith(("http://", "https://")):
        raise Refusal(40055, "invalid button url domain")
    if kind not in CLICK_TYPES and kind != "view":
        raise Refusal(40015, f"invalid button type {kind!r}")
