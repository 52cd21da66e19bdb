"""What the bot under test calls outside: a local sink that says yes to everything.

    python -m bench.sink --port 8092 [--delay-ms 150]

POST /sms                             the SMS webhook: 200, counted
POST /cgi-bin/stable_token            WeChat's access token: always the same one
POST /cgi-bin/message/custom/send     WeChat's customer message (the giver's notice): ok
GET  /counts                          {"sms": n, "wechat": n, "token": n}

The bot's outbox sends the order SMS and the giver's notice here, so the
claim scenario includes that work without any traffic leaving the machine.
With --delay-ms each SMS and each message is answered that late, as a vendor
would be (`python -m bench sends`); the token at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter

import tornado.web
from tornado.httpserver import HTTPServer

COUNTS: Counter[str] = Counter()
DELAY = [0.0]  # seconds before each SMS or message is answered


class Sms(tornado.web.RequestHandler):
    async def post(self) -> None:
        if DELAY[0]:
            await asyncio.sleep(DELAY[0])
        COUNTS["sms"] += 1
        self.finish({"ok": True})


class Token(tornado.web.RequestHandler):
    def post(self) -> None:
        COUNTS["token"] += 1
        self.finish({"access_token": "bench-access-token", "expires_in": 7200})


class Custom(tornado.web.RequestHandler):
    async def post(self) -> None:
        if DELAY[0]:
            await asyncio.sleep(DELAY[0])
        COUNTS["wechat"] += 1
        self.finish({"errcode": 0, "errmsg": "ok"})


class Counts(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish(json.dumps(dict(COUNTS)))


async def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sink")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--delay-ms", type=float, default=0.0, help="answer each send this late")
    args = p.parse_args()
    DELAY[0] = args.delay_ms / 1000
    app = tornado.web.Application(
        [
            (r"/sms", Sms),
            (r"/cgi-bin/stable_token", Token),
            (r"/cgi-bin/message/custom/send", Custom),
            (r"/counts", Counts),
            (r"/healthz", Counts),
        ]
    )
    HTTPServer(app).listen(args.port, "127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
