"""The /dev sandbox's stand-in of WeChat's getMedia, serving what the sandbox's page sent as a
user's picture or voice (bot/sandbox.py keeps them), so the outbox job that fetches greeting
media from WeChat runs unchanged against it (bot/app.py points its client here).

    POST {API}/cgi-bin/stable_token             a token for the sandbox's client
    GET  {API}/cgi-bin/media/get?access_token=…&media_id=…

It answers as WeChat's docs show ("获取临时素材"): the file with its Content-Type and
`Content-disposition: attachment; filename="<media_id>.<ext>"`, or JSON
`{"errcode":40007,"errmsg":"invalid media_id"}` for a media_id it does not have (or has had
for 3 days), 41001 without a token and 40001 with one it did not hand out.
"""

from __future__ import annotations

import json
import secrets

from bot import sandbox
from handlers.web.dev import DevHandler

TOKEN_SECONDS = 7200
_tokens: set[str] = set()  # handed out by this process (the sandbox runs one)


class StandinHandler(DevHandler):
    def check_xsrf_cookie(self) -> None:
        """A server-to-server call, as WeChat's API is: no cookie, no form."""

    def answer(self, body: dict) -> None:
        self.set_header("Content-Type", "application/json; encoding=utf-8")
        self.finish(json.dumps(body, ensure_ascii=False))


class StableToken(StandinHandler):
    def post(self) -> None:
        token = "sandbox-" + secrets.token_urlsafe(32)
        _tokens.add(token)
        self.answer({"access_token": token, "expires_in": TOKEN_SECONDS})


class MediaGet(StandinHandler):
    def get(self) -> None:
        token = self.get_query_argument("access_token", "")
        if not token:
            return self.answer({"errcode": 41001, "errmsg": "access_token missing"})
        if token not in _tokens:
            return self.answer({"errcode": 40001, "errmsg": "invalid credential"})
        media_id = self.get_query_argument("media_id", "")
        kept = sandbox.upload_of(self.services.config.media.dir, media_id)
        if kept is None:
            return self.answer({"errcode": 40007, "errmsg": "invalid media_id"})
        path, content_type = kept
        self.set_header("Content-Type", content_type)
        self.set_header("Content-disposition", f'attachment; filename="{path.name}"')
        self.set_header("Cache-Control", "no-cache, must-revalidate")
        self.finish(path.read_bytes())


def routes() -> list:
    return [
        (rf"{sandbox.API}/cgi-bin/stable_token", StableToken),
        (rf"{sandbox.API}/cgi-bin/media/get", MediaGet),
    ]
