"""The Tornado application: the URL table, its settings, and the server's life.

Usage::

    app = make_app(services)                 # tornado.web.Application
    sockets = listen(config)                 # [server] host and port, or CannotListen (why, and what to do)
    await serve(services, sockets=sockets)   # serve, work the outbox, stop cleanly on SIGTERM

One process serves the callback, the pages and the background outbox loop.
Database work runs on the services' runner (storage/runner.py), never on the
loop; everything that goes over the network (SMS, WeChat API) is awaited or
leaves through the outbox.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shlex
import signal
import socket
from pathlib import Path

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bot.app import Services, settle_heap
from bot.config import Config
from handlers.standins import wechat_media
from handlers.web import claim, dev, draw, media, mobile, oauth, pages, pay, subscribed, themes
from handlers.web.base import BaseHandler, request_failed
from handlers.wechat import MAX_BODY, Front, WeChatHandler
from handlers.wire import make_crypt

log = logging.getLogger("gift_bot.server")

STATIC = Path(__file__).resolve().parent.parent / "static"
TOKEN = r"([^/]{1,128})"
# The largest body any request needs is a WeChat push's (a few KB; the callback refuses over
# its MAX_BODY), a form a few hundred bytes. Tornado refuses more before reading it into memory.
DRAIN_SECONDS = 10.0  # how long a stopping server waits for requests it is answering


class NotFound(BaseHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


def make_app(services: Services, port: int | None = None) -> tornado.web.Application:
    config = services.config
    routes = [
        (r"/wechat", WeChatHandler),
        (rf"/claim/{TOKEN}", claim.ClaimPage),
        (rf"/claim/{TOKEN}/form", claim.OrderFormPage),
        (rf"/claim/{TOKEN}/done", claim.DonePage),
        (rf"/claim/{TOKEN}/thanks", claim.ThanksForm),
        (rf"/claim/{TOKEN}/qr\.svg", claim.ClaimQr),
        (rf"/claim/{TOKEN}/swap", claim.SwapPage),  # [shares] swap: another gift instead
        # new ways to give (issue 18): a draw's join, claiming with a verified mobile
        (rf"/claim/{TOKEN}/join", draw.JoinDraw),
        (rf"/claim/{TOKEN}/mobile", mobile.MobilePage),
        (rf"/claim/{TOKEN}/mobile/verify", mobile.VerifyPage),
        (rf"/media/{media.NAME}", media.MediaFile, {"path": config.media.dir}),
        (rf"/cards/{themes.THEME}\.png", themes.CardPicture),  # [[themes]]
        (r"/themes\.css", themes.ThemeStyles),
        (r"/gifts/([A-Za-z0-9_-]{1,32})", pages.GiftPage),
        (r"/oauth/callback", oauth.OAuthCallback),
        (r"/subscribed/?", subscribed.Subscribed),  # back from WeChat's one-time subscription
        (r"/healthz", pages.Health),
        (r"/metrics", pages.Metrics),
    ]
    if services.pay is not None:
        routes += pay.routes(services)
    if config.server.sandbox:
        routes += [
            (r"/dev", dev.DevPage),
            (r"/dev/send", dev.DevSend),
            (r"/dev/inbox", dev.DevInbox),
            (r"/dev/as", dev.DevAs),
            (r"/dev/login", dev.DevLogin),
            (r"/dev/subscribemsg", subscribed.DevSubscribe),
            (r"/dev/upload", dev.DevUpload),
            *wechat_media.routes(),  # the stand-in of WeChat's getMedia (bot/sandbox.py)
            (r"/dev/draw/([^/]{1,128})", dev.DevDraw),
        ]
    inflight = [0]  # requests being handled now (BaseHandler._execute, wechat.Front)
    jobs = config.database.threads
    services.worker.busy = lambda: inflight[0] >= jobs  # the next message would wait for a job
    return tornado.web.Application(
        routes,
        services=services,
        crypt=make_crypt(config.wechat.token, config.wechat.encoding_aes_key, config.wechat.app_id),
        port=port or config.server.port,
        cookie_secret=config.server.cookie_secret,
        xsrf_cookies=True,
        xsrf_cookie_kwargs={
            "httponly": False,
            "samesite": "Lax",
            "secure": config.server.secure_cookies,  # from public_url: a proxy may speak http to us
        },
        static_path=str(STATIC),
        default_handler_class=NotFound,
        log_function=log_request,
        inflight=inflight,
    )


def make_server(app: tornado.web.Application, config: Config) -> HTTPServer:
    """The HTTP server for `app`: WeChat's pushes answered ahead of it (handlers/wechat.py),
    bodies capped before they are read, proxy headers if trusted."""
    return HTTPServer(
        Front(app),
        xheaders=config.server.xheaders,
        max_body_size=MAX_BODY,
        max_buffer_size=MAX_BODY,
    )


class CannotListen(Exception):
    """The port cannot be had: the message says why and how to choose another, in one line."""


def listen(config: Config) -> list[socket.socket]:
    """The listening sockets of `[server] host` and `port`."""
    host, port = config.server.host, config.server.port
    try:
        return bind_sockets(port, host, family=socket.AF_UNSPEC)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            spare = _spare_port(host, port)
            raise CannotListen(
                f"port {port} on {host} is already in use (another `make run`?): choose another "
                f"with {_commands(config, spare)} or [server] port in {config.path or 'the config'}"
            ) from None
        if exc.errno == errno.EACCES:
            raise CannotListen(
                f"port {port} on {host} needs more rights than this user has: choose one above "
                f"1023 with {_commands(config, 8080)} or [server] port in "
                f"{config.path or 'the config'}"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise CannotListen(
                f"server.host {host} is not an address of this machine: use 127.0.0.1 "
                f"(this machine only) or 0.0.0.0 (every interface)"
            ) from None
        raise


def _commands(config: Config, port: int) -> str:
    """The two ways to serve this very config on `port`: a hint without the config's name
    would serve the example's."""
    path = shlex.quote(str(config.path)) if config.path else "PATH"
    return (
        f"`make run CONFIG={path} PORT={port}`, `python -m bot serve --config {path} --port {port}`"
    )


def _spare_port(host: str, busy: int) -> int:
    """A port after `busy` that nobody listens on right now, to suggest (busy + 1 if none)."""
    for port in range(busy + 1, min(busy + 50, 65535)):
        try:
            for sock in bind_sockets(port, host, family=socket.AF_UNSPEC):
                sock.close()
            return port
        except OSError:
            continue
    return busy + 1


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Failed requests only (`request_failed`)."""
    status = handler.get_status()
    if status >= 400:
        request = handler.request
        reason = getattr(handler, "refusal", "")
        request_failed(status, request.method, request.path, reason, request.request_time())


async def serve(
    services: Services, stop: asyncio.Event | None = None, sockets: list | None = None
) -> None:
    """Run until SIGTERM/SIGINT (or `stop`): stop taking requests, finish the outbox pass, close.
    `sockets`: listening sockets bound already (by `listen`, or a worker's of `--workers N`)."""
    config = services.config
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = make_app(services)
    server = make_server(app, config)
    server.add_sockets(sockets if sockets is not None else listen(config))
    log.info(
        "listening",
        extra={"url": config.server.public_url, "port": config.server.port, "pid": os.getpid()},
    )
    settle_heap()
    background = asyncio.create_task(services.background(stop))
    await stop.wait()
    log.info("stopping")
    server.stop()  # no new connections; the requests already in get their answers
    for _ in range(int(DRAIN_SECONDS / 0.05)):
        if not app.settings["inflight"][0]:
            break
        await asyncio.sleep(0.05)
    await asyncio.wait_for(server.close_all_connections(), timeout=10)
    await background
    services.close()
    log.info("stopped")
