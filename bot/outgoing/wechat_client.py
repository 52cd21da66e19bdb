"""The HTTP side of our WeChat API client (bot/outgoing/wechat_api.py builds the calls on it):
the access_token shared by every worker, one renewal when WeChat refuses it, errors as
`WeChatError` with whether to try again.

Usage::

    class WeChatApi(WeChatClient): ...                 # the calls the bot makes
    data = await client.call("POST", "/cgi-bin/menu/create", body)   # raises WeChatError

The access_token lives in the `ApiToken` row named "wechat", shared by every worker and
process. It is fetched through `/cgi-bin/stable_token`, which hands back the same token while
it is valid, so two workers refreshing at once do not invalidate each other (the plain
`/cgi-bin/token` would). Each process keeps a copy of the row, and reads the row again only
when its copy comes within five minutes of its expiry or WeChat refuses it (another process
forced a new one): a call reads no row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import Any
from urllib.parse import urlencode

from bot.config import WeChat
from bot.outgoing import wechat_tokens as tokens
from bot.outgoing.http import Http, Unanswered, Unreached
from storage.models import utcnow
from storage.runner import Runner

log = logging.getLogger("gift_bot.wechat_api")

TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # token stale, invalid or expired
# Worth trying again later: WeChat busy, quota or rate limits. A token error that
# survived our own refresh-and-retry is kept retryable too, since another
# worker's force_refresh may have raced us; a bad secret will run out of attempts.
RETRYABLE_CODES = frozenset({-1, 45009, 45011}) | TOKEN_ERRORS
MAX_CLIENTS = 10


class WeChatError(Exception):
    """WeChat said no (`errcode` != 0), or never answered (`errcode` is None)."""

    def __init__(self, errcode: int | None, errmsg: str, retryable: bool | None = None):
        # No errcode: WeChat's answer never came or made no sense; the reason is all there is.
        super().__init__(f"WeChat error {errcode}: {errmsg}" if errcode is not None else errmsg)
        self.errcode = errcode
        self.errmsg = errmsg
        self.retryable = errcode in RETRYABLE_CODES if retryable is None else retryable


class WeChatClient:
    """One account's HTTP client and token; safe to share between tasks of one event loop."""

    def __init__(self, config: WeChat, db: Runner, token_row: str = tokens.ROW):
        self.config = config
        self.db = db
        self.token_row = token_row  # the sandbox's stand-in keeps its token in a row of its own
        self.api_base = config.api_base.rstrip("/")
        self.oauth_base = config.oauth_base.rstrip("/")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token_lock: asyncio.Lock | None = None
        self._copy: tuple[str, dt.datetime] | None = None  # the token row as last seen
        timeout = config.timeout_seconds
        self.http = Http(connect_timeout=timeout, timeout=timeout, most=MAX_CLIENTS)

    def close(self) -> None:
        """Release the HTTP client's sockets; the next call opens anew."""
        self.http.close()
        self._loop = self._token_lock = self._copy = None

    # -- access_token ---------------------------------------------------------

    async def access_token(self) -> str:
        """The shared token: this process's copy while it is good (no read a call), else the
        row's, else fetched through stable_token."""
        if self._copy is not None and tokens.good(self._copy[1]):
            return self._copy[0]
        if found := await self.db.run(tokens.stored, self.token_row):
            return self._keep(found)
        async with self._lock():
            # Another task of this process may have fetched it while we waited.
            found = await self.db.run(tokens.stored, self.token_row)
            return self._keep(found) if found else await self._fetch_token(force_refresh=False)

    async def _renew_token(self, failed: str) -> str:
        """Replace a token WeChat just refused; force a new one only if asked for."""
        async with self._lock():
            self._copy = None
            found = await self.db.run(tokens.stored, self.token_row)
            if found and found[0] != failed:
                return self._keep(found)  # someone renewed it while this call was failing
            await self.db.write(tokens.drop, failed, self.token_row)
            token = await self._fetch_token(force_refresh=False)
            if token == failed:
                # stable_token still vouches for the token WeChat refused: only
                # force_refresh (20 a day) gets past that.
                token = await self._fetch_token(force_refresh=True)
            return token

    def _keep(self, found: tuple[str, dt.datetime]) -> str:
        """Keep this copy of the row until it is no longer good (or WeChat refuses it: another
        process forced a new one, and `_renew_token` reads the row again)."""
        self._copy = found
        return found[0]

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
        self._keep((token, expires))
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
        headers = {"Content-Type": "application/json; charset=utf-8"} if body else None
        try:
            answer = await self.http.request(method, url, body, headers)
        except (Unreached, Unanswered) as exc:  # refused, reset, DNS, TLS, timeout
            log.warning("%s %s: %s", method, path, exc)
            raise WeChatError(None, f"network error: {exc}", retryable=True) from exc
        return parse_answer(path, answer.status, answer.body)

    def _lock(self) -> asyncio.Lock:
        """The token's lock, for this loop's tasks (a Lock belongs to one loop)."""
        loop = asyncio.get_running_loop()
        if self._token_lock is None or self._loop is not loop:
            self._loop, self._token_lock = loop, asyncio.Lock()
        return self._token_lock


def parse_answer(path: str, status: int, body: bytes | None) -> dict[str, Any]:
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
