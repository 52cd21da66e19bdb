"""Local stand-ins for outside services, written from their published docs.

Usage::

    standin = WeChatPayStandIn(mchid=..., appid=..., merchant_public_key=..., ...)
    app = tornado.web.Application(standin.routes("/dev/wechatpay"))   # the /dev sandbox mounts it
    # the tests start it on its own loopback port: tests/fakes/wechatpay.py

Each stand-in refuses what the real service refuses, with the real status and
error body, so a client that works against it has met the real rules. It is
product code: the sandbox ships it, so it imports nothing from the tests.
"""
