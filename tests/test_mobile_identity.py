"""Who a visitor known by a verified mobile is: someone for one day on the server, whatever
the browser keeps (F7)."""

from __future__ import annotations

import time

import pytest
import requests
from conftest import COOKIE_SECRET
from helpers import DESKTOP_UA, FORM, browser, first_slot, monday_morning, share_in_chat
from tornado.web import create_signed_value

from storage.models import Order

E164 = "+8613912345678"


@pytest.fixture(autouse=True)
def monday(bot):
    return monday_morning(bot)


def signed_ago(value: str, days: float) -> str:
    """The visitor cookie as the server signed it `days` ago."""
    then = time.time() - days * 86_400
    return create_signed_value(COOKIE_SECRET, "gb_openid", value, clock=lambda: then).decode()


def desktop(cookie: str | None = None) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = DESKTOP_UA
    if cookie:
        session.cookies.set("gb_openid", cookie)
    return session


# -- F7: a verified mobile lasts a day ---------------------------------------------


@pytest.mark.parametrize("days", [1.05, 2, 29])
def test_a_verified_mobile_older_than_a_day_is_nobody(bot, days):
    token = share_in_chat(bot)
    session = desktop(signed_ago(f"tel:{E164}", days))
    page = session.get(f"{bot.url}/claim/{token}/form", timeout=10)
    assert page.status_code == 200 and "用手机号领取" in page.text and E164 not in page.text
    data = FORM | {"delivery": first_slot(bot), "_xsrf": session.cookies["_xsrf"]}
    assert session.post(f"{bot.url}/claim/{token}/form", data=data).status_code == 403
    assert Order.select().count() == 0


def test_a_verified_mobile_of_today_orders_and_a_wechat_visitor_stays_30_days(bot):
    token = share_in_chat(bot, quantity="2")
    session = desktop(signed_ago(f"tel:{E164}", 0.95))
    assert f'value="{E164}" readonly' in session.get(f"{bot.url}/claim/{token}/form").text
    in_wechat = browser(bot, "o_friend")
    in_wechat.cookies.set("gb_openid", signed_ago("o_friend", 29))
    page = in_wechat.get(f"{bot.url}/claim/{token}/form", allow_redirects=False)
    assert page.status_code == 200 and 'name="phone"' in page.text, "no new login needed"
