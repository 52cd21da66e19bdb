"""Small pages: a gift of the catalogue, and /healthz for load balancers and monitors."""

from __future__ import annotations

import tornado.web

from bot import catalogue
from handlers.web.base import BaseHandler
from storage.db import is_alive


class GiftPage(BaseHandler):
    """A catalogue gift, linked from its card in chat."""

    def get(self, gift_id: str) -> None:
        gift = catalogue.get(gift_id)
        if gift is None or not gift.active:
            raise tornado.web.HTTPError(404)
        number = [g.id for g in catalogue.active()].index(gift.id) + 1
        self.render_page("pages/gift.html", gift=gift, number=number)


class Health(BaseHandler):
    """200 when the database answers, 503 when it does not."""

    def get(self) -> None:
        alive = is_alive()
        self.set_status(200 if alive else 503)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish("ok\n" if alive else "database unavailable\n")
