"""What every page handler shares: the services, Jinja2 pages, the visitor's OpenID cookie.

The cookie names the visitor: a WeChat OpenID (from WeChat's login) for COOKIE_DAYS, or a
mobile verified outside WeChat (`tel:…`, bot/visitors.py) for MOBILE_DAYS. Both ages are
checked on the server against the signature's time, never left to the browser's expiry.

Usage::

    class GiftPage(BaseHandler):
        def get(self, gift_id):
            self.render_page("pages/gift.html", gift=...)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import tornado.web
from markupsafe import Markup

from bot import logs, visitors
from bot.app import Services
from handlers.web.sandbox import acting_field, stale_page

log = logging.getLogger("gift_bot.web")
server_log = logging.getLogger("gift_bot.server")

T = TypeVar("T")
OPENID_COOKIE = "gb_openid"
COOKIE_DAYS = 30
MOBILE_DAYS = 1  # a verified mobile: a new code each day
PAGE_MAX_BODY = 16 * 1024  # the order form is a few hundred bytes
VISITORS_SECONDS = 60  # a Cookie header checked is trusted this long (get_current_user)
VISITORS_KEPT = 10_000
_visitors: dict[tuple, tuple[str, float]] = {}  # (secret, Cookie header) → (visitor, until)


def request_failed(status: int, method: str, path: str, reason: str, seconds: float) -> None:
    """The log line of a refused or failed request: its path, never its query (a signature, an
    OpenID or an OAuth code, none of which belongs in a log)."""
    server_log.log(
        logging.WARNING if status < 500 else logging.ERROR,
        "request failed",
        extra={
            "status": status,
            "method": method,
            "path": path,
            "reason": reason,
            "ms": round(seconds * 1000, 2),
        },
    )


class BaseHandler(tornado.web.RequestHandler):
    async def _execute(self, *args, **kwargs):
        """Count the request while it runs, so a stopping server lets it finish."""
        inflight = self.settings["inflight"]
        inflight[0] += 1
        try:
            return await super()._execute(*args, **kwargs)
        finally:
            inflight[0] -= 1

    def prepare(self) -> None:
        if len(self.request.body) > PAGE_MAX_BODY:
            raise tornado.web.HTTPError(413)

    @property
    def services(self) -> Services:
        return self.settings["services"]

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """A database read, on the services' runner: never on the event loop."""
        return await self.services.db.run(fn, *args)

    def get_current_user(self) -> str | None:
        """The visitor the cookie names. A Cookie header seen in the last minute is not parsed
        and checked again (a visitor's every page sends the same one): parsing the header and
        checking its signature were a tenth of a gift page's time. A cookie may so outlive its
        age by up to VISITORS_SECONDS; one that was refused is checked each time."""
        header = (self.settings["cookie_secret"], self.request.headers.get("Cookie", ""))
        now = time.monotonic()
        kept = _visitors.get(header)
        if kept is not None and now < kept[1]:
            return kept[0]
        visitor = self._visitor()
        if visitor is not None:
            if len(_visitors) >= VISITORS_KEPT:
                _visitors.clear()
            _visitors[header] = (visitor, now + VISITORS_SECONDS)
        return visitor

    def _visitor(self) -> str | None:
        value = self.get_signed_cookie(OPENID_COOKIE, max_age_days=COOKIE_DAYS)
        visitor = value.decode() if value else None
        if visitors.is_mobile(visitor):
            fresh = self.get_signed_cookie(OPENID_COOKIE, max_age_days=MOBILE_DAYS)
            return visitor if fresh else None
        return visitor

    def remember(self, openid: str) -> None:
        self.set_signed_cookie(
            OPENID_COOKIE,
            openid,
            expires_days=COOKIE_DAYS,
            httponly=True,
            samesite="Lax",
            secure=self.services.config.server.secure_cookies,
        )

    def render_page(self, template: str, status: int = 200, view=None, **context: Any) -> None:
        """A page; a view dataclass from bot/ lends the template its fields (and its gift)."""
        if view is not None:
            context = {**vars(view), "gift": view.gift, **context}
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        sandbox = self.services.config.server.sandbox
        self.finish(
            self.services.renderer.page(
                template,
                # In the sandbox every form also carries who the page acts as (sandbox.py).
                xsrf_form_html=lambda: (
                    Markup(self.xsrf_form_html())
                    + (acting_field(self.current_user) if sandbox else "")
                ),
                user=self.current_user,
                here=self.request.uri,
                **context,
            )
        )

    def check_xsrf_cookie(self) -> None:
        super().check_xsrf_cookie()
        if self.services.config.server.sandbox and stale_page(self):
            raise tornado.web.Finish()  # refused, with both names: never as someone else

    def set_default_headers(self) -> None:
        # Nearly every page is someone's: a gift page as its visitor sees it, the form with what
        # they typed, the confirmation's name, phone and address, the giver's status, the pay
        # page. No shared cache may keep one, nor a browser on disk; a page meant for anyone
        # (the claim QR) says so itself.
        self.set_header("Cache-Control", "private, no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: https:; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        )

    def log_exception(self, typ, value, tb) -> None:
        """Tornado's own would log the whole URI (a signature, an OpenID, an OAuth code) and,
        for a crash, every header: keep the reason and the path only."""
        if isinstance(value, tornado.web.HTTPError):
            self.refusal = value.log_message or ""  # log_request adds it to its line
            return
        log.error(
            "request crashed",
            extra={"method": self.request.method, "path": self.request.path},
            exc_info=(typ, value, tb),
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self.request.path.startswith("/wechat"):
            self.finish(f"{status_code}")
            return
        self.render_page("pages/error.html", status=status_code, code=status_code)

    hashed = staticmethod(logs.hashed)
