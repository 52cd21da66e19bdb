"""Small pages: a gift of the catalogue, /healthz for load balancers, /metrics for Prometheus."""

from __future__ import annotations

import tornado.web

from bot import metrics
from bot.config import is_loopback_host
from bot.gifting import catalogue
from bot.outgoing import outbox_rows
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

    Two things are believed, and nothing else: the socket's peer, and the proxy the config
    names. The peer must be this machine. Without `[server] xheaders` no proxy is configured,
    so that is all: a header that names a client (`X-Real-IP`, `Forwarded`, `CF-Connecting-IP`)
    came from a process on this machine, which may say anything. With `xheaders` the peer may
    be the proxy on this machine, which names every client it forwards in X-Real-IP (and
    X-Forwarded-For); Tornado reads that name into `remote_ip`, and it must be this machine
    too. A request naming no client did not come through the proxy: a scraper here asked
    127.0.0.1 straight. (A proxy in front without `xheaders` is a config that cannot tell its
    clients apart; the shipped nginx also answers /metrics with a 404.)
    """

    async def get(self) -> None:
        if not self.services.config.server.metrics_public and not self.from_this_machine():
            raise tornado.web.HTTPError(403, "metrics are for this machine only")
        rows, oldest = await self.db(outbox_rows.state, self.services.now())
        body, content_type = metrics.exposition(rows, oldest)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)

    def from_this_machine(self) -> bool:
        peer = self.request.connection.context.address
        return (
            isinstance(peer, tuple)
            and is_loopback_host(peer[0])
            and is_loopback_host(self.request.remote_ip)  # the peer, or whom the proxy names
        )
