"""Small pages: a gift of the catalogue, /healthz for load balancers, /metrics for Prometheus."""

from __future__ import annotations

import tornado.web

from bot import metrics
from bot.config import is_loopback_host
from bot.gifting import catalogue
from bot.outgoing import outbox
from handlers.web.base import BaseHandler
from storage.db import is_alive


class GiftPage(BaseHandler):
    """A catalogue gift, linked from its card in chat."""

    async def get(self, gift_id: str) -> None:
        gifts = await self.db(catalogue.active)
        number, gift = next(((n, g) for n, g in enumerate(gifts, 1) if g.id == gift_id), (0, None))
        if gift is None:
            raise tornado.web.HTTPError(404)
        self.render_page("pages/gift.html", gift=gift, number=number)


class Health(BaseHandler):
    """200 when the database answers, 503 when it does not."""

    async def get(self) -> None:
        alive = await self.db(is_alive)
        self.set_status(200 if alive else 503)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish("ok\n" if alive else "database unavailable\n")


class Metrics(BaseHandler):
    """Prometheus' scrape: for this machine only, unless `[server] metrics_public = true`.

    Behind a reverse proxy every request comes from 127.0.0.1, so one that carries the
    proxy's X-Real-IP / X-Forwarded-For header is not taken for this machine's own.
    """

    async def get(self) -> None:
        if not self.services.config.server.metrics_public and not self.from_this_machine():
            raise tornado.web.HTTPError(403, "metrics are for this machine only")
        rows, oldest = await self.db(outbox.state, self.services.now())
        body, content_type = metrics.exposition(rows, oldest)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)

    def from_this_machine(self) -> bool:
        peer = self.request.connection.context.address
        proxied = any(h in self.request.headers for h in ("X-Real-Ip", "X-Forwarded-For"))
        return isinstance(peer, tuple) and is_loopback_host(peer[0]) and not proxied
