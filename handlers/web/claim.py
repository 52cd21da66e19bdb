"""The recipient's pages (S12–S14): the gift page of a share, the order form, the confirmation.

GET  /claim/<token>          the gift, the blessing, how many are left, the claim button;
                             for its giver, the share's status page
GET  /claim/<token>/form     the order form (the visitor must be known: OAuth first);
                             ?swap=<gift> for a gift taken instead
POST /claim/<token>/form     check every field; one order, then the confirmation
GET  /claim/<token>/swap     the gifts the visitor may take instead ([shares] swap)
GET  /claim/<token>/done     the visitor's order for this share
POST /claim/<token>/thanks   the visitor's note to the giver, once per order
GET  /claim/<token>/qr.svg   the account's claim QR (scene = token), for claiming in chat

Each handler awaits one call of `bot.gifting.claims` and renders what it says.
"""

from __future__ import annotations

import io

import segno
import tornado.web

from bot.codes import Code
from bot.gifting import cards, claims, confirmation, mobile_claims, shares
from handlers.web.base import BaseHandler
from handlers.web.oauth import in_wechat, login_redirect

DRAWN_KEPT = 512  # gift pages kept drawn, keyed by everything they show (nothing of the visitor)
_drawn: dict[tuple, str] = {}


class ShareHandler(BaseHandler):
    def known(self, view) -> bool:
        """404 for no share (unknown and malformed alike: no hint); OAuth for no visitor."""
        if view is None:
            raise tornado.web.HTTPError(404)
        if getattr(view, "login", False):
            if not in_wechat(self.request):  # WeChat's login cannot work here: a verified mobile
                self.render_outside(view)
                return False
            login_redirect(self, self.request.uri)
            return False
        return True

    def render_outside(
        self, view: claims.ClaimView, status: int = 200, error=None, typed=""
    ) -> None:
        """Outside WeChat: the account's QR, and claiming with a verified mobile."""
        self.render_page(
            "pages/outside.html", status=status, view=view, error=error, typed=typed,
            sandbox=self.services.config.server.sandbox,
            mobile=mobile_claims.available(self.services.config), closed=view.closed,
        )  # fmt: skip

    def render_claim(self, view: claims.ClaimView, status: int = 200) -> None:
        """The gift page. Every visitor in the same case sees the same page, so it is drawn
        once: the key holds everything the page shows, and nothing of the visitor. The giver
        has a page of their own (the share's status, never cached), so is sent there. A draw
        the visitor can join carries a form (its XSRF token is theirs), and a sandbox page says
        who it acts as: drawn for them alone."""
        if view.refusal == Code.OWN_SHARE:
            return self.redirect(f"/claim/{view.share.token}", status=303)
        sandbox = self.services.config.server.sandbox  # its banner names the visitor
        if (view.draw is not None and view.draw.can_join) or view.promise is not None or sandbox:
            return self.render_page(  # a form, a subscription link of the visitor's own, a banner
                "pages/claim.html", status=status, view=view, sandbox=sandbox
            )
        order = view.order.order_no if view.order else None
        key = (tuple(view.share.__data__.items()), id(view.gift), view.refusal, order,
               view.qr_ready, view.draw.key() if view.draw else None, view.facts,
               view.greeting)  # fmt: skip
        html = _drawn.get(key)
        if html is None:
            context = {**vars(view), "gift": view.gift, "user": None}
            html = self.services.renderer.page(
                "pages/claim.html", sandbox=self.services.config.server.sandbox, **context
            )
            if len(_drawn) >= DRAWN_KEPT:
                _drawn.pop(next(iter(_drawn)))
            _drawn[key] = html
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(html)

    def render_form(self, view: claims.FormView, status: int = 200) -> None:
        self.render_page("pages/form.html", status=status, view=view)


class ClaimPage(ShareHandler):
    """S12: what the friend sees on opening the link; the giver sees how the share is doing."""

    async def get(self, token: str) -> None:
        view = await claims.page(self.services, token, self.current_user, in_wechat(self.request))
        if isinstance(view, claims.StatusView):
            return self.render_page("pages/share_status.html", view=view)
        if self.known(view):
            self.render_claim(view)


class OrderFormPage(ShareHandler):
    """S13/S14 on the web: one page, every field checked on the server."""

    async def get(self, token: str) -> None:
        swap_to = self.get_query_argument("swap", "")[:32]
        view = await claims.form(self.services, token, self.current_user, swap_to)
        if not self.known(view):
            return
        if isinstance(view, claims.FormView):
            return self.render_form(view)
        if view.refusal == Code.ALREADY_CLAIMED:
            return self.redirect(f"/claim/{view.share.token}/done")
        self.render_claim(view, status=409)

    async def post(self, token: str) -> None:
        if not self.current_user:
            if await self.services.db.run(shares.by_token, token) is None:
                raise tornado.web.HTTPError(404)
            raise tornado.web.HTTPError(403, "who is claiming is unknown")
        texts = {name: self.get_body_argument(name, "") for name in self.request.body_arguments}
        result = await claims.submit(self.services, token, self.current_user, texts)
        if isinstance(result, claims.Placed):
            return self.redirect(f"/claim/{result.token}/done", status=303)
        if not self.known(result):
            return
        if isinstance(result, claims.FormView):
            return self.render_form(result, status=400)
        self.render_claim(result, status=409)


class SwapPage(ShareHandler):
    """The gifts the visitor may take instead, each leading to the order form for it."""

    async def get(self, token: str) -> None:
        view = await claims.swaps(self.services, token, self.current_user)
        if not self.known(view):
            return
        if isinstance(view, claims.SwapView):
            return self.render_page("pages/swap.html", view=view)
        if view.refusal == Code.ALREADY_CLAIMED:
            return self.redirect(f"/claim/{view.share.token}/done")
        self.render_claim(view, status=409)


class DonePage(ShareHandler):
    """The confirmation: order number, gift, delivery time."""

    async def get(self, token: str) -> None:
        view = await confirmation.done(
            self.services, token, self.current_user, in_wechat(self.request)
        )
        if not self.known(view):
            return
        if isinstance(view, claims.ClaimView):  # no order of theirs here yet
            return self.redirect(f"/claim/{view.share.token}")
        self.render_page("pages/done.html", view=view)


class ThanksForm(ShareHandler):
    """The confirmation page's box: a note to the giver."""

    async def post(self, token: str) -> None:
        if not self.current_user:
            if await self.services.db.run(shares.by_token, token) is None:
                raise tornado.web.HTTPError(404)
            raise tornado.web.HTTPError(403, "who is thanking is unknown")
        text = self.get_body_argument("thanks", "")
        result = await confirmation.thank(self.services, token, self.current_user, text)
        if not self.known(result):
            return
        if isinstance(result, confirmation.DoneView):
            return self.render_page("pages/done.html", status=400, view=result)
        if isinstance(result, claims.ClaimView):  # no order of theirs to thank for
            return self.redirect(f"/claim/{result.share.token}", status=303)
        self.redirect(f"/claim/{result.token}/done", status=303)


class ClaimQr(ShareHandler):
    """The claim QR as a standalone SVG, drawn here from the URL WeChat gives for the ticket."""

    async def get(self, token: str) -> None:
        share = await self.services.db.run(shares.by_token, token)
        if share is None:
            raise tornado.web.HTTPError(404)
        url = await cards.qr_url(self.services, share)
        if url is None:
            raise tornado.web.HTTPError(503, "WeChat's API cannot be reached")
        svg = io.BytesIO()
        segno.make(url, error="m").save(svg, kind="svg", scale=5, border=2, xmldecl=False)
        self.set_header("Content-Type", "image/svg+xml")
        self.set_header("Cache-Control", "private, max-age=3600")
        self.finish(svg.getvalue())
