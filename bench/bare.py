"""The ceiling: Tornado alone, answering what the bot answers with fixed bytes.

    python -m bench.bare --port 8091 [--aes-key KEY --app-id wx… --token T]

POST /wechat answers a fixed text reply XML of the size of the bot's catalogue
reply (in safe mode: that reply encrypted once, at start-up); it reads,
stores and checks nothing. GET /claim/<token> answers a fixed HTML page:
by default a stand-in of the claim page's size, or the bot's own page once
the harness has POSTed it to /_page. GET /healthz answers "ok". Whatever the
bot costs above this is the bot; this is the stack's own cost (Tornado's
HTTP server, one process, one core) measured the same way, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import tornado.web
from tornado.httpserver import HTTPServer

BARE_USER = "o_bare_fixed_reply"  # the reply's ToUserName: the client routes it by arrival order
CONTENT = (
    "🎁 礼物清单\n1. 明前龙井礼盒  ¥168.00\n\n2. 流心奶黄月饼  ¥128.00\n\n"
    "3. 鲜花一束  ¥199.00\n\n4. 精品咖啡豆  ¥88.00\n\n5. 羊绒围巾  ¥399.00\n\n"
    "6. 当季水果篮  ¥158.00\n\n回复编号查看礼物，例如回复「1」。"
)
PAGE = (
    "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>礼物</title>"
    "</head><body><main>" + "<p>好友送你一份礼物，领取礼物。</p>" * 120 + "</main></body></html>"
)


def reply_xml() -> str:
    return (
        f"<xml><ToUserName><![CDATA[{BARE_USER}]]></ToUserName>"
        "<FromUserName><![CDATA[gh_bench_account]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{CONTENT}]]></Content></xml>"
    )


class WeChat(tornado.web.RequestHandler):
    def post(self) -> None:
        self.set_header("Content-Type", "application/xml; charset=utf-8")
        self.finish(self.settings["reply"])


class Page(tornado.web.RequestHandler):
    def get(self, token: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.settings["page"][0])


class SetPage(tornado.web.RequestHandler):
    def post(self) -> None:
        self.settings["page"][0] = self.request.body
        self.finish("ok\n")


class Health(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish("ok\n")


def make_app(aes_key: str = "", app_id: str = "", token: str = "") -> tornado.web.Application:
    reply = reply_xml()
    if aes_key:
        from werobot.crypto import MessageCrypt

        reply = MessageCrypt(token, aes_key, app_id).encrypt_message(reply)
    return tornado.web.Application(
        [
            (r"/wechat", WeChat),
            (r"/claim/([^/]{1,128})", Page),
            (r"/_page", SetPage),
            (r"/healthz", Health),
        ],
        reply=reply.encode(),
        page=[PAGE.encode()],
    )


async def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bare")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--aes-key", default="")
    p.add_argument("--app-id", default="")
    p.add_argument("--token", default="")
    args = p.parse_args()
    server = HTTPServer(make_app(args.aes_key, args.app_id, args.token))
    server.listen(args.port, "127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
