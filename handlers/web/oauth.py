"""Who is the visitor: WeChat web OAuth (snsapi_base, silent), remembered in a signed cookie.

    login_redirect(handler, "/claim/<token>")   # → oauth_base/connect/oauth2/authorize …
    GET /oauth/callback?code=…&state=…          # → code exchanged at api_base, cookie set, back

`state` is random per attempt and kept in a signed, short-lived cookie, so a
callback that did not start here is refused. In the /dev sandbox the sandbox
stands in for WeChat and asks which OpenID to be.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlsplit

from bot import users
from bot.outgoing.wechat_api import WeChatError
from handlers.web.base import BaseHandler

STATE_COOKIE = "gb_oauth"


def safe_next(url: str | None) -> str:
    """Only a path on this site: never an open redirect.

    No scheme, no host, and no character a browser would strip or bend: `/\t/evil.example`
    loses its tab on the way and becomes `//evil.example`, another site.
    """
    if not url or not url.startswith("/") or "\\" in url:
        return "/"
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        return "/"
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith("//"):
        return "/"
    return url


def in_wechat(request) -> bool:
    """Whether the page was opened in WeChat's browser, where its web login works."""
    return "MicroMessenger" in request.headers.get("User-Agent", "")


def login_redirect(handler: BaseHandler, next_url: str) -> None:
    services = handler.services
    if services.config.server.sandbox:
        handler.redirect(f"/dev/login?next={quote(safe_next(next_url), safe='')}")
        return
    state = secrets.token_hex(16)
    handler.set_signed_cookie(
        STATE_COOKIE, f"{state}|{safe_next(next_url)}", expires_days=1 / 144, httponly=True,
        samesite="Lax", secure=services.config.server.secure_cookies,
    )  # fmt: skip
    redirect_uri = f"{services.config.server.public_url}/oauth/callback"
    handler.redirect(services.wechat.oauth_authorize_url(redirect_uri, state))


class OAuthCallback(BaseHandler):
    """WeChat sends the visitor back here with a one-time code."""

    async def get(self) -> None:
        kept = self.get_signed_cookie(STATE_COOKIE, max_age_days=1)
        state, _, next_url = (kept.decode() if kept else "").partition("|")
        if not state or self.get_query_argument("state", "") != state:
            return self.render_page("pages/error.html", status=400, code="oauth_state")
        code = self.get_query_argument("code", "")
        if not code:
            return self.render_page("pages/error.html", status=403, code="oauth_refused")
        try:
            openid = await self.services.wechat.oauth_openid(code)
        except WeChatError:
            return self.render_page("pages/error.html", status=502, code="oauth_failed")
        self.clear_cookie(STATE_COOKIE)
        await self.services.db.write(users.touch, openid)
        self.remember(openid)
        self.redirect(safe_next(next_url))
