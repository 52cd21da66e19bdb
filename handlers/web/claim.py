"""The recipient's pages (S12–S14): the gift page of a share, the order form, the confirmation.

GET  /claim/<token>          the gift, the blessing, how many are left, the claim button
GET  /claim/<token>/form     the order form (the visitor must be known: OAuth first)
POST /claim/<token>/form     check every field; one order, then the confirmation
GET  /claim/<token>/done     the visitor's order for this share
GET  /claim/<token>/qr.svg   the account's claim QR (scene = token), for claiming in chat
"""

from __future__ import annotations

import datetime as dt
import io
import logging

import segno
import tornado.web

from bot import orders, shares
from bot.forms.base import FormContext, Invalid
from bot.forms.delivery import delivery_slots
from bot.forms.order import OrderForm
from bot.wechat_api import WeChatError
from handlers.web.base import BaseHandler
from handlers.web.oauth import login_redirect

log = logging.getLogger("gift_bot.claim")

QR_SECONDS = 2_592_000  # 30 days, WeChat's longest temporary QR


class ShareHandler(BaseHandler):
    def share_or_404(self, token: str):
        share = shares.by_token(token)
        if share is None:
            raise tornado.web.HTTPError(404)  # the same for malformed and unknown: no hint
        return share

    def require_user(self) -> str | None:
        """The visitor's OpenID; when unknown, send them through OAuth and return None."""
        if self.current_user:
            return self.current_user
        login_redirect(self, self.request.uri)
        return None

    def form_for(self, share) -> OrderForm:
        now = self.services.now().replace(tzinfo=dt.UTC)
        return OrderForm(FormContext(self.services.config, now, subject={"gift": share.gift}))

    def render_claim(
        self, share, refusal: str | None, status: int = 200, qr_ready: bool = False
    ) -> None:
        order = orders.existing_order(share, self.current_user) if self.current_user else None
        self.render_page(
            "pages/claim.html",
            status=status,
            share=share,
            gift=share.gift,
            refusal=refusal,
            order=order,
            reason=self.services.renderer.text(f"errors/{refusal}.txt", share=share, order=order)
            if refusal
            else "",
            sandbox=self.services.config.server.sandbox,
            qr_ready=qr_ready,
        )

    async def claim_qr(self, share) -> str | None:
        """The URL the claim QR encodes: cached, or asked of WeChat; None when it cannot be had."""
        now = self.services.now()
        if share.qr_url and share.qr_expires_at and share.qr_expires_at > now:
            return share.qr_url
        if self.services.config.server.sandbox:
            return None  # no Official Account behind the sandbox
        try:
            qr = await self.services.wechat.create_qr(share.token, QR_SECONDS)
        except WeChatError as exc:
            log.warning("claim QR unavailable", extra={"error": str(exc)})
            return None
        share.qr_url = qr.url
        share.qr_expires_at = now + dt.timedelta(seconds=qr.expire_seconds - 60)
        await self.blocking(shares.keep_qr, share)
        return share.qr_url


class ClaimPage(ShareHandler):
    """S12: what the friend sees on opening the link."""

    async def get(self, token: str) -> None:
        share = self.share_or_404(token)
        if self.require_user() is None:
            return
        refusal = orders.claim_refusal(share, self.current_user, self.services.now())
        qr_ready = refusal in (None, "own_share") and await self.claim_qr(share) is not None
        self.render_claim(share, refusal, qr_ready=qr_ready)


class OrderFormPage(ShareHandler):
    """S13/S14 on the web: one page, every field checked on the server."""

    def get(self, token: str) -> None:
        share = self.share_or_404(token)
        if self.require_user() is None:
            return
        refusal = orders.claim_refusal(share, self.current_user, self.services.now())
        if refusal == "already_claimed":
            return self.redirect(f"/claim/{share.token}/done")
        if refusal:
            return self.render_claim(share, refusal, status=409)
        self.render_form(share, values={}, errors={})

    async def post(self, token: str) -> None:
        share = self.share_or_404(token)
        if not self.current_user:
            raise tornado.web.HTTPError(403, "who is claiming is unknown")
        form = self.form_for(share)
        texts = {f.name: self.get_body_argument(f.name, "") for f in form.fields}
        values, errors = form.parse_all(texts)
        if errors:
            return self.render_form(share, values=texts, errors=errors, status=400)
        try:
            await self.blocking(
                orders.place, self.services.notices, share.token, self.current_user, values, "web",
                self.services.now(),
            )  # fmt: skip
        except Invalid as refused:
            return self.render_claim(shares.by_token(token), refused.code, status=409)
        self.services.worker.wake.set()
        self.redirect(f"/claim/{share.token}/done", status=303)

    def render_form(self, share, values: dict, errors: dict[str, Invalid], status: int = 200):
        form = self.form_for(share)
        renderer = self.services.renderer
        self.render_page(
            "pages/form.html",
            status=status,
            share=share,
            gift=share.gift,
            fields=form.active_fields(),
            values=values,
            errors={name: renderer.error(exc) for name, exc in errors.items()},
            slots=delivery_slots(self.services.config.delivery, form.ctx.now),
        )


class DonePage(ShareHandler):
    """The confirmation: order number, gift, delivery time."""

    def get(self, token: str) -> None:
        share = self.share_or_404(token)
        if self.require_user() is None:
            return
        order = orders.existing_order(share, self.current_user)
        if order is None:
            return self.redirect(f"/claim/{share.token}")
        form = self.form_for(share)
        answers = {
            "variant": order.variant,
            "name": order.name,
            "phone": order.phone,
            "address": {"region": order.region, "detail": order.address_detail},
            "delivery": f"{order.delivery_date.isoformat()} {order.delivery_slot}",
        }
        rows = [(f, f.show(answers[f.name], form.ctx)) for f in form.active_fields()]
        self.render_page("pages/done.html", share=share, gift=share.gift, order=order, rows=rows)


class ClaimQr(ShareHandler):
    """The claim QR as a standalone SVG, drawn here from the URL WeChat gives for the ticket."""

    async def get(self, token: str) -> None:
        share = self.share_or_404(token)
        url = await self.claim_qr(share)
        if url is None:
            raise tornado.web.HTTPError(503, "WeChat's API cannot be reached")
        svg = io.BytesIO()
        segno.make(url, error="m").save(svg, kind="svg", scale=5, border=2, xmldecl=False)
        self.set_header("Content-Type", "image/svg+xml")
        self.set_header("Cache-Control", "private, max-age=3600")
        self.finish(svg.getvalue())
