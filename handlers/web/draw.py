"""A draw's join button (参与抽奖).

POST /claim/<token>/join    the visitor joins the draw once, then sees its page again

The page itself is the claim page (handlers/web/claim.py), which shows the draw's state.
"""

from __future__ import annotations

import tornado.web

from bot.gifting import claims, draws, shares
from handlers.web.claim import ShareHandler
from handlers.web.oauth import in_wechat


class JoinDraw(ShareHandler):
    """Join once; a refusal (the giver's own, drawn already) is the page saying why, 409."""

    async def post(self, token: str) -> None:
        if not self.current_user:
            if await self.services.db.run(shares.by_token, token) is None:
                raise tornado.web.HTTPError(404)
            raise tornado.web.HTTPError(403, "who is joining is unknown")
        refused = await draws.join_on_page(self.services, token, self.current_user)
        if refused is None:
            return self.redirect(f"/claim/{token}", status=303)
        view = await claims.page(self.services, token, self.current_user, in_wechat(self.request))
        if isinstance(view, claims.StatusView):  # the giver's own draw
            return self.render_page("pages/share_status.html", status=409, view=view)
        if self.known(view):
            self.render_claim(view, status=409)
