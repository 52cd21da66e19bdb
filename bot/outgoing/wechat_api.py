"""Our thin async client of WeChat's server API and web OAuth.

Usage::

    api = WeChatApi(config.wechat, Runner(2))           # no I/O, no HTTP client yet
    await api.send_text(openid, "礼物已经送到啦")          # raises WeChatError
    await api.send_subscription(openid, template_id, 12, "中奖", "恭喜…", url)   # once per grant
    ticket, seconds = await api.create_qr("g_123", 2_592_000)
    media = await api.get_media("MEDIA_ID", most=2 << 20)  # a picture or voice a user sent
    url = api.oauth_authorize_url("https://gift.example.com/claim/abc", state="abc")
    openid = await api.oauth_openid(code)               # after WeChat redirects back with ?code=
    asyncio.run(api.create_menu(config.menu))           # what `python -m bot menu push` does

Every host comes from `[wechat] api_base` / `oauth_base`, so tests and the
sandbox point it at `FakeWeChat` in `tests/fakes/wechat_api.py`.

The access_token lives in the `ApiToken` row named "wechat", shared by every
worker and process. It is fetched through `/cgi-bin/stable_token`, which hands
back the same token while it is valid, so two workers refreshing at once do
not invalidate each other (the plain `/cgi-bin/token` would).

Failures raise `WeChatError`; `.retryable` tells the outbox whether to try
again later (busy, quota, network) or give up (bad openid, 48 h window shut).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from bot.config import Menu, MenuButton, WeChat
from bot.outgoing import wechat_tokens as tokens
from storage.models import utcnow
from storage.runner import Runner

log = logging.getLogger("gift_bot.wechat_api")

TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # token stale, invalid or expired
# Worth trying again later: WeChat busy, quota or rate limits. A token error that
# survived our own refresh-and-retry is kept retryable too, since another
# worker's force_refresh may have raced us; a bad secret will run out of attempts.
RETRYABLE_CODES = frozenset({-1, 45009, 45011}) | TOKEN_ERRORS
MAX_CLIENTS = 10
SCENE_MAX = 64
QR_PAUSE = 60.0  # seconds without asking for QR codes after WeChat failed to make one


@dataclass(frozen=True)
class Media:
    """A temporary media file as WeChat sent it (pictures and voices of messages: 3 days)."""

    content_type: str
    body: bytes  # at most `most` + 1 bytes of it: what was asked for, and a byte to tell
    size: int  # bytes WeChat sent


@dataclass(frozen=True)
class QrCode:
    ticket: str
    url: str  # what the QR encodes; drawing it needs no call to WeChat
    expire_seconds: int


class WeChatError(Exception):
    """WeChat said no (`errcode` != 0), or never answered (`errcode` is None)."""

    def __init__(self, errcode: int | None, errmsg: str, retryable: bool | None = None):
        # No errcode: WeChat's answer never came or made no sense; the reason is all there is.
        super().__init__(f"WeChat error {errcode}: {errmsg}" if errcode is not None else errmsg)
        self.errcode = errcode
        self.errmsg = errmsg
        self.retryable = errcode in RETRYABLE_CODES if retryable is None else retryable


class QrPaused(WeChatError):
    """No QR code asked of WeChat: it failed a moment ago (the failure was logged then)."""


class WeChatApi:
    """One account's API client; safe to share between tasks of one event loop."""

    def __init__(self, config: WeChat, db: Runner, token_row: str = tokens.ROW):
        self.config = config
        self.db = db
        self.token_row = token_row  # the sandbox's stand-in keeps its token in a row of its own
        self.api_base = config.api_base.rstrip("/")
        self.oauth_base = config.oauth_base.rstrip("/")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: AsyncHTTPClient | None = None
        self._token_lock: asyncio.Lock | None = None
        self._qr_paused_until = 0.0  # pages ask for QR codes; an outage must not stall each one

    def close(self) -> None:
        """Release the HTTP client's sockets; the next call makes a new one."""
        if self._client is not None:
            self._client.close()
        self._loop = self._client = self._token_lock = None

    # -- access_token ---------------------------------------------------------

    async def access_token(self) -> str:
        """The shared token, fetched through stable_token when missing or expiring."""
        token = await self.db.run(tokens.stored, self.token_row)  # off the event loop
        if token:
            return token
        async with self._lock():
            # Another task of this process may have fetched it while we waited.
            stored = await self.db.run(tokens.stored, self.token_row)
            return stored or await self._fetch_token(force_refresh=False)

    async def _renew_token(self, failed: str) -> str:
        """Replace a token WeChat just refused; force a new one only if asked for."""
        async with self._lock():
            token = await self.db.run(tokens.stored, self.token_row)
            if token and token != failed:
                return token  # someone renewed it while this call was failing
            await self.db.write(tokens.drop, failed, self.token_row)
            token = await self._fetch_token(force_refresh=False)
            if token == failed:
                # stable_token still vouches for the token WeChat refused: only
                # force_refresh (20 a day) gets past that.
                token = await self._fetch_token(force_refresh=True)
            return token

    async def _fetch_token(self, force_refresh: bool) -> str:
        body = {
            "grant_type": "client_credential",
            "appid": self.config.app_id,
            "secret": self.config.app_secret,
            "force_refresh": force_refresh,
        }
        data = await self._send("POST", "/cgi-bin/stable_token", body)
        token, expires_in = data["access_token"], int(data["expires_in"])
        expires = utcnow() + dt.timedelta(seconds=expires_in)
        await self.db.write(tokens.store, token, expires, self.token_row)
        # Not a character of the token: its first six were enough to narrow a guess, and the
        # database row is where it is kept.
        log.info("new access_token, valid %d s, force=%s", expires_in, force_refresh)
        return token

    # -- generic call ---------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Call `path` with the access_token; one refresh and retry on a token error."""
        token = await self.access_token()
        try:
            return await self._send(method, path, json_body, params, token)
        except WeChatError as err:
            if err.errcode not in TOKEN_ERRORS:
                raise
            log.warning("%s refused the access_token (%s); renewing", path, err.errcode)
        return await self._send(method, path, json_body, params, await self._renew_token(token))

    async def _send(
        self,
        method: str,
        path: str,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        """One HTTP exchange; WeChat's JSON back, or WeChatError."""
        query = {**(params or {}), **({"access_token": token} if token else {})}
        url = self.api_base + path + ("?" + urlencode(query) if query else "")
        body = None
        if json_body is not None:
            # WeChat rejects \u escapes of Chinese with 40033: send the UTF-8 itself.
            body = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
        request = HTTPRequest(
            url,
            method=method,
            body=body,
            headers={"Content-Type": "application/json; charset=utf-8"} if body else None,
        )
        try:
            response = await self._http().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:  # refused, reset, DNS, TLS, timeout
            log.warning("%s %s: %s", method, path, exc)
            raise WeChatError(None, f"network error: {exc}", retryable=True) from exc
        return _parse(path, response.code, response.body)

    def _http(self) -> AsyncHTTPClient:
        """This loop's HTTP client; made lazily because `asyncio.run` brings a new loop."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self.close()  # the previous loop's client, if any, is no use in this one
            self._loop, self._token_lock = loop, asyncio.Lock()
            self._client = AsyncHTTPClient(
                force_instance=True,
                max_clients=MAX_CLIENTS,
                defaults={
                    "connect_timeout": self.config.timeout_seconds,
                    "request_timeout": self.config.timeout_seconds,
                },
            )
        return self._client

    def _lock(self) -> asyncio.Lock:
        self._http()  # a Lock belongs to one loop: renew it with the client
        assert self._token_lock is not None
        return self._token_lock

    # -- what the bot does ----------------------------------------------------

    async def create_menu(self, menu: Menu) -> None:
        """Replace the account's custom menu."""
        await self.call(
            "POST", "/cgi-bin/menu/create", {"button": [_button(b) for b in menu.button]}
        )

    async def send_text(self, openid: str, content: str) -> None:
        """A customer-service text message (only inside the user's 48 h window)."""
        await self._send_custom(openid, "text", {"content": content})

    async def send_card(self, openid: str, card: dict[str, str]) -> None:
        """A customer-service news message of one article (title, description, url, picurl):
        a card the user can forward (only inside the user's 48 h window)."""
        await self._send_custom(openid, "news", {"articles": [card]})

    async def send_template(
        self, openid: str, template_id: str, url: str, data: dict[str, str]
    ) -> None:
        """A template message (服务号; no 48 h window, but only to followers)."""
        body = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
        }
        if url:
            body["url"] = url
        await self.call("POST", "/cgi-bin/message/template/send", body)

    async def send_subscription(
        self, openid: str, template_id: str, scene: int, title: str, content: str, url: str = ""
    ) -> None:
        """A one-time subscription message (一次性订阅消息): one per confirmation, followers or
        not (to 服务通知 for those who do not follow). `title` up to 15 characters, `content`
        up to 200 (WeChat's limits)."""
        body = {
            "touser": openid,
            "template_id": template_id,
            "scene": str(scene),
            "title": title,
            "data": {"content": {"value": content}},
        }
        if url:
            body["url"] = url
        await self.call("POST", "/cgi-bin/message/template/subscribe", body)

    async def _send_custom(self, openid: str, msgtype: str, content: dict[str, Any]) -> None:
        body = {"touser": openid, "msgtype": msgtype, msgtype: content}
        await self.call("POST", "/cgi-bin/message/custom/send", body)

    async def create_qr(self, scene: str, expire_seconds: int) -> QrCode:
        """A temporary QR code carrying `scene`: its ticket, its content URL and lifetime."""
        if not 1 <= len(scene) <= SCENE_MAX:
            raise ValueError(f"scene must be 1-{SCENE_MAX} characters, not {len(scene)}")
        if time.monotonic() < self._qr_paused_until:
            raise QrPaused(None, "QR codes paused after a failure", retryable=True)
        body = {
            "expire_seconds": expire_seconds,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}},
        }
        try:
            data = await self.call("POST", "/cgi-bin/qrcode/create", body)
        except WeChatError:
            self._qr_paused_until = time.monotonic() + QR_PAUSE
            raise
        return QrCode(data["ticket"], data["url"], int(data["expire_seconds"]))

    async def get_media(self, media_id: str, most: int) -> Media:
        """A temporary media file by its media_id (getMedia), with one token renewal as
        `call` does; WeChatError(40007) when WeChat no longer has it (after 3 days). Beyond
        `most` bytes nothing more is kept in memory (the size still says how many came)."""
        token = await self.access_token()
        try:
            return await self._download("/cgi-bin/media/get", media_id, most, token)
        except WeChatError as err:
            if err.errcode not in TOKEN_ERRORS:
                raise
            log.warning("/cgi-bin/media/get refused the access_token (%s); renewing", err.errcode)
        token = await self._renew_token(token)
        return await self._download("/cgi-bin/media/get", media_id, most, token)

    async def _download(self, path: str, media_id: str, most: int, token: str) -> Media:
        url = self.api_base + path + "?" + urlencode({"access_token": token, "media_id": media_id})
        kept, seen = bytearray(), [0]

        def arrived(chunk: bytes) -> None:
            seen[0] += len(chunk)
            if len(kept) <= most:
                kept.extend(chunk[: most + 1 - len(kept)])

        request = HTTPRequest(url, method="GET", streaming_callback=arrived)
        try:
            response = await self._http().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            log.warning("GET %s: %s", path, exc)
            raise WeChatError(None, f"network error: {exc}", retryable=True) from exc
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if response.code != 200 or kind in ("application/json", "text/plain", ""):
            _parse(path, response.code, bytes(kept))  # WeChat's errors come as JSON
            raise WeChatError(None, f"{path} sent no file ({kind or 'no type'})", retryable=False)
        return Media(kind, bytes(kept), seen[0])

    # -- web OAuth -------------------------------------------------------------

    def oauth_authorize_url(self, redirect_uri: str, state: str, scope: str = "snsapi_base") -> str:
        """The consent page URL; WeChat insists on this parameter order and the fragment."""
        if scope not in ("snsapi_base", "snsapi_userinfo"):
            raise ValueError(f"unknown OAuth scope {scope!r}")
        if not (state.isascii() and state.isalnum() and len(state) <= 128):
            raise ValueError("OAuth state must be at most 128 letters or digits")
        return (
            f"{self.oauth_base}/connect/oauth2/authorize"
            f"?appid={quote(self.config.app_id, safe='')}"
            f"&redirect_uri={quote(redirect_uri, safe='')}"
            f"&response_type=code&scope={scope}&state={state}#wechat_redirect"
        )

    async def oauth_openid(self, code: str) -> str:
        """Trade the one-time `code` from the OAuth redirect for the user's OpenID."""
        params = {
            "appid": self.config.app_id,
            "secret": self.config.app_secret,
            "code": code,
            "grant_type": "authorization_code",
        }
        data = await self._send("GET", "/sns/oauth2/access_token", params=params)
        return data["openid"]


# -- helpers ------------------------------------------------------------------


def _parse(path: str, status: int, body: bytes | None) -> dict[str, Any]:
    if status >= 500:
        raise WeChatError(None, f"HTTP {status} from {path}", retryable=True)
    if status != 200:
        raise WeChatError(None, f"HTTP {status} from {path}", retryable=False)
    try:
        data = json.loads(body or b"")
    except ValueError:
        # A proxy's HTML error page, most likely: a passing fault.
        raise WeChatError(None, f"{path} answered something that is not JSON", True) from None
    errcode = data.get("errcode", 0)
    if errcode != 0:
        log.info("%s: errcode %s %s", path, errcode, data.get("errmsg", ""))
        raise WeChatError(errcode, data.get("errmsg", ""))
    return data


def _button(b: MenuButton) -> dict[str, Any]:
    """A config button in WeChat's shape; a parent button has no type of its own."""
    if b.sub_button:
        return {"name": b.name, "sub_button": [_button(s) for s in b.sub_button]}
    if b.type == "view":
        return {"type": "view", "name": b.name, "url": b.url}
    return {"type": b.type, "name": b.name, "key": b.key}
