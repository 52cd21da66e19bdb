"""`GET /media/<name>`: a greeting's picture or voice, while its share lives.

The name is the unguessable one bot/media_files.py gave the file; the route takes nothing
else (no slash, no dot but the extension's), the file is looked up by its database row, and
it is served only while its share is not over (bot/gifting/media.py, `servable`). Tornado's
StaticFileHandler does the serving: byte ranges (a phone's audio player asks for them),
ETag and Last-Modified, never a directory listing; the content type is the row's, and the
browser is told not to guess another (nosniff), nor to run anything in it.
"""

from __future__ import annotations

import logging

import tornado.web

from bot.gifting import media

log = logging.getLogger("gift_bot.web")
NAME = r"([A-Za-z0-9_-]{32}\.(?:jpg|png|gif|webp|m4a))"


class MediaFile(tornado.web.StaticFileHandler):
    """One greeting file, by its unguessable name."""

    async def get(self, name: str, include_body: bool = True) -> None:
        services = self.settings["services"]
        row = await services.db.run(media.servable, name, services.now())
        if row is None:
            raise tornado.web.HTTPError(404)
        self.kept_type = row.content_type
        await super().get(name, include_body)

    async def head(self, name: str) -> None:
        await self.get(name, include_body=False)

    def get_content_type(self) -> str:
        return self.kept_type

    def set_extra_headers(self, path: str) -> None:
        # A share's greeting is for those who have its link: no shared cache keeps it, and
        # it stops answering when the share is over, so a browser keeps it a few minutes only.
        self.set_header("Cache-Control", "private, max-age=300")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        self.set_header("Cross-Origin-Resource-Policy", "same-origin")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Content-Disposition", "inline")

    def log_exception(self, typ, value, tb) -> None:
        """As every page's (handlers/web/base.py): the path and the reason, never the URI."""
        if isinstance(value, tornado.web.HTTPError):
            self.refusal = value.log_message or ""
            return
        log.error("request crashed", extra={"path": self.request.path}, exc_info=(typ, value, tb))

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}")
