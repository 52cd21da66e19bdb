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

The HTTP and the shared access_token are bot/outgoing/wechat_client.py's.

Failures raise `WeChatError`; `.retryable` tells the outbox whether to try
again later (busy, quota, network) or give up (bad openid, 48 h window shut).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from bot.config import Menu, MenuButton, WeChat
from bot.outgoing import wechat_tokens as tokens
from bot.outgoing.http import Unanswered, Unreached
from bot.outgoing.wechat_client import (
    TOKEN_ERRORS,
    WeChatClient,
    WeChatError,
    parse_answer,
)
from storage.runner import Runner

__all__ = ["Media", "QrCode", "QrPaused", "WeChatApi", "WeChatError"]

log = logging.getLogger("gift_bot.wechat_api")

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


class QrPaused(WeChatError):
    """No QR code asked of WeChat: it failed a moment ago (the failure was logged then)."""


class WeChatApi(WeChatClient):
    """The calls the bot makes of one account; safe to share between tasks of one loop."""

    def __init__(self, config: WeChat, db: Runner, token_row: str = tokens.ROW):
        super().__init__(config, db, token_row)
        self._qr_paused_until = 0.0  # pages ask for QR codes; an outage must not stall each one

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

        try:
            answer = await self.http.request("GET", url, on_chunk=arrived)
        except (Unreached, Unanswered) as exc:
            log.warning("GET %s: %s", path, exc)
            raise WeChatError(None, f"network error: {exc}", retryable=True) from exc
        kind = answer.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if answer.status != 200 or kind in ("application/json", "text/plain", ""):
            parse_answer(path, answer.status, bytes(kept))  # WeChat's errors come as JSON
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


def _button(b: MenuButton) -> dict[str, Any]:
    """A config button in WeChat's shape; a parent button has no type of its own."""
    if b.sub_button:
        return {"name": b.name, "sub_button": [_button(s) for s in b.sub_button]}
    if b.type == "view":
        return {"type": "view", "name": b.name, "url": b.url}
    return {"type": b.type, "name": b.name, "key": b.key}
