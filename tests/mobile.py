"""A visitor outside WeChat who claims with a verified mobile: a desktop browser asks for a
6-digit code by SMS (the [sms] webhook's fake keeps what was sent) and enters it.

Usage in a test module::

    from mobile import E164, MOBILE, ask_code, code_sent, desktop, enter, xsrf_of

    session = desktop()                                # DESKTOP_UA: not WeChat's browser
    assert ask_code(bot, session, token).status_code == 200   # a code for MOBILE
    page = enter(bot, session, token, code_sent(bot))  # the code of the last SMS to E164
    session.post(f"{bot.url}/claim/{token}/join", data={"_xsrf": xsrf_of(session)})
    desktop(cookie)                                    # carrying a gb_openid cookie of your own
"""

from __future__ import annotations

import re

import requests
from helpers import DESKTOP_UA

MOBILE = "13912345678"
E164 = "+8613912345678"


def desktop(cookie: str | None = None) -> requests.Session:
    """A browser that is not WeChat's; `cookie` as its gb_openid."""
    session = requests.Session()
    session.headers["User-Agent"] = DESKTOP_UA
    if cookie:
        session.cookies.set("gb_openid", cookie)
    return session


def xsrf_of(session: requests.Session) -> str:
    return session.cookies.get("_xsrf")


def ask_code(bot, session, token, mobile=MOBILE) -> requests.Response:
    """The mobile's form posted, after the claim page (for its XSRF cookie) when not yet seen."""
    if not xsrf_of(session):
        session.get(f"{bot.url}/claim/{token}", timeout=10)
    data = {"phone": mobile, "_xsrf": xsrf_of(session)}
    return session.post(f"{bot.url}/claim/{token}/mobile", data=data, timeout=10)


def code_sent(bot, mobile=E164) -> str:
    """The code in the last SMS to `mobile` (the webhook body's `text` holds it)."""
    bot.drain()
    texts = [m["text"] for m in bot.sms.received if m["phone"] == mobile]
    return re.search(r"\b(\d{6})\b", texts[-1]).group(1)


def enter(bot, session, token, code) -> requests.Response:
    data = {"code": code, "_xsrf": xsrf_of(session)}
    return session.post(f"{bot.url}/claim/{token}/mobile/verify", data=data, timeout=10)
