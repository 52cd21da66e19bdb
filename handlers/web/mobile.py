"""Claiming outside WeChat with a verified mobile (bot/gifting/mobile_claims.py).

GET  /claim/<token>/mobile          the code's form once one was sent; else the outside page
POST /claim/<token>/mobile          send a code to the mobile typed (limits: bot/mobile_claims)
POST /claim/<token>/mobile/verify   check the code; then the order form with that mobile fixed

A claim link opened outside WeChat (no `MicroMessenger` in the user agent) shows the outside
page (handlers/web/claim.py `render_outside`): the account's QR, and the mobile's form. The
mobile waiting for its code is kept in a signed cookie for PENDING_DAYS; once verified, the
visitor is known as `tel:<mobile>` for a day (MOBILE_DAYS, checked on the server by
handlers/web/base.py), and the claim pages work as for anyone.
"""

from __future__ import annotations

import tornado.web

from bot import visitors
from bot.codes import Code
from bot.forms.base import Invalid
from bot.forms.person import mask_phone
from bot.gifting import claims, draws, mobile_claims
from handlers.web.base import MOBILE_DAYS, OPENID_COOKIE
from handlers.web.claim import ShareHandler

PENDING_COOKIE = "gb_mobile"
PENDING_DAYS = 1 / 96  # 15 minutes: a code lives 5
RATE_LIMITS = {Code.MOBILE_RATE_MINUTE, Code.MOBILE_RATE_HOUR, Code.MOBILE_RATE_DAY,
               Code.MOBILE_RATE_IP, Code.MOBILE_RATE_SHARE, Code.MOBILE_RATE_ACCOUNT}  # fmt: skip


class MobileHandler(ShareHandler):
    def pending(self, token: str) -> str | None:
        """The mobile a code was sent to for this share, from the signed cookie."""
        kept = self.get_signed_cookie(PENDING_COOKIE, max_age_days=PENDING_DAYS)
        kept_token, _, phone = (kept.decode() if kept else "").partition("|")
        return phone if kept_token == token and phone else None

    async def unknown_visitor_view(self, token: str) -> claims.ClaimView:
        view = await claims.page(self.services, token, None)
        if view is None:
            raise tornado.web.HTTPError(404)
        return view

    def render_code(self, view, phone: str, status: int = 200, error=None) -> None:
        self.render_page(
            "pages/mobile_code.html", status=status, view=view, phone=phone,
            masked=mask_phone(phone), error=error,
        )  # fmt: skip


class MobilePage(MobileHandler):
    """The mobile to verify, then its code."""

    async def get(self, token: str) -> None:
        view = await self.unknown_visitor_view(token)
        phone = None if self.get_query_argument("change", "") else self.pending(token)
        if phone:
            return self.render_code(view, phone)
        self.render_outside(view)

    async def post(self, token: str) -> None:
        typed = self.get_body_argument("phone", "")
        services = self.services
        if not mobile_claims.available(services.config):
            raise tornado.web.HTTPError(404, "no SMS template for codes")
        try:
            phone = await services.db.write(
                mobile_claims.send_code, services.notices, token, typed, self.request.remote_ip,
                self.current_user, services.now(),
            )  # fmt: skip
        except Invalid as refused:
            view = await self.unknown_visitor_view(token)
            status = 429 if refused.code in RATE_LIMITS else 400
            return self.render_outside(view, status=status, error=refused, typed=typed)
        services.worker.wake.set()
        self.set_signed_cookie(
            PENDING_COOKIE, f"{token}|{phone}", expires_days=PENDING_DAYS, httponly=True,
            samesite="Lax", secure=services.config.server.secure_cookies,
        )  # fmt: skip
        self.redirect(f"/claim/{token}/mobile", status=303)


class VerifyPage(MobileHandler):
    """The code typed: right, and the visitor is known by that mobile."""

    async def post(self, token: str) -> None:
        view = await self.unknown_visitor_view(token)
        phone = self.pending(token)
        if phone is None:
            missing = Invalid(Code.MOBILE_CODE_MISSING)
            return self.render_outside(view, status=400, error=missing)
        services = self.services
        typed = self.get_body_argument("code", "")
        why = await services.db.write(
            mobile_claims.verify, services.config, token, phone, typed, self.current_user,
            services.now(),
        )  # fmt: skip
        if why is not None:
            left = await services.db.run(mobile_claims.tries_left, token, phone)
            return self.render_code(view, phone, status=400, error=Invalid(why, left=left))
        self.clear_cookie(PENDING_COOKIE)
        self.set_signed_cookie(
            OPENID_COOKIE, visitors.identity(phone), expires_days=MOBILE_DAYS,
            httponly=True, samesite="Lax", secure=services.config.server.secure_cookies,
        )  # fmt: skip
        after = "" if draws.is_draw(view.share) else "/form"  # a draw is joined on its page
        self.redirect(f"/claim/{token}{after}", status=303)
