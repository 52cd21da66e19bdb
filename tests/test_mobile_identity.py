"""Who a visitor known by a verified mobile is: someone for one day on the server, whatever
the browser keeps (F7); never the share's own giver, whose mobiles are those of their own
orders and the one they verified while known by WeChat (F8)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests
from conftest import COOKIE_SECRET
from helpers import (
    BOTH_DATABASES,
    FORM,
    browser,
    claim,
    confirm_card,
    first_slot,
    monday_morning,
    share_in_chat,
    xsrf,
)
from mobile import E164, MOBILE, code_sent, desktop, enter
from tornado.web import create_signed_value

from storage.models import DrawEntry, MobileCode, Order, Share

OWN_MOBILE = "送礼人自己用过这个手机号"  # templates/errors/mobile_own_share.txt


@pytest.fixture(autouse=True)
def monday(bot):
    return monday_morning(bot)


def signed_ago(value: str, days: float) -> str:
    """The visitor cookie as the server signed it `days` ago."""
    then = time.time() - days * 86_400
    return create_signed_value(COOKIE_SECRET, "gb_openid", value, clock=lambda: then).decode()


def ask_code(bot, session, token, mobile=MOBILE) -> requests.Response:
    """The mobile's form posted (a page drawn for everyone carries no XSRF cookie: set one)."""
    session.get(f"{bot.url}/claim/{token}", timeout=10)
    if "_xsrf" not in session.cookies:
        session.cookies.set("_xsrf", "0f" * 16)
    data = {"phone": mobile, "_xsrf": session.cookies["_xsrf"]}
    return session.post(f"{bot.url}/claim/{token}/mobile", data=data, timeout=10)


def verify(bot, session, token, mobile=MOBILE) -> requests.Response:
    assert ask_code(bot, session, token, mobile).status_code == 200
    return enter(bot, session, token, code_sent(bot, "+86" + mobile))


def orders_elsewhere(bot, openid: str, phone: str) -> None:
    """`openid` claims another giver's gift in WeChat, giving `phone` as theirs."""
    token = share_in_chat(bot, giver="o_someone")
    assert claim(bot, browser(bot, openid), token, phone=phone).status_code == 200


def draw_of(bot, giver: str) -> str:
    """A draw of one unit at the default time; its claim token."""
    for text in ("1", "抽奖", "1", "跳过", "跳过"):
        bot.wx.text(giver, text)
    return confirm_card(bot.wx, giver)["Url"].rsplit("/", 1)[1]


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


# -- F8: never the giver's own mobile ----------------------------------------------


@BOTH_DATABASES
def test_a_giver_gets_no_code_for_a_mobile_of_their_own_orders(bot):
    orders_elsewhere(bot, "o_giver", MOBILE)
    token = share_in_chat(bot)
    refused = ask_code(bot, desktop(), token)
    assert refused.status_code == 400 and OWN_MOBILE in refused.text
    assert MobileCode.select().count() == 0
    assert ask_code(bot, desktop(), token, "13700000000").status_code == 200, "others may"


def test_a_mobile_verified_in_the_givers_own_browser_is_theirs(bot):
    someone = share_in_chat(bot, giver="o_someone")
    givers_phone = browser(bot, "o_giver")
    givers_phone.get(f"{bot.url}/claim/{someone}")  # WeChat's login: the giver's cookie
    assert verify(bot, givers_phone, someone).url.endswith("/form")
    own = share_in_chat(bot)
    refused = ask_code(bot, desktop(), own)
    assert refused.status_code == 400 and OWN_MOBILE in refused.text

    in_wechat = browser(bot, "o_giver")
    in_wechat.get(f"{bot.url}/claim/{own}")
    itself = ask_code(bot, in_wechat, own, "13700000000")
    assert itself.status_code == 400 and "你自己送出的礼物" in itself.text
    assert MobileCode.select().count() == 1


@BOTH_DATABASES
def test_a_givers_mobile_never_joins_their_draw(bot):
    token = draw_of(bot, "o_giver")
    session = desktop()
    assert verify(bot, session, token).url.endswith(f"/claim/{token}")
    orders_elsewhere(bot, "o_giver", MOBILE)  # only now is the mobile known as the giver's
    page = session.get(f"{bot.url}/claim/{token}", timeout=10)
    assert OWN_MOBILE in page.text and "参与抽奖</button>" not in page.text
    data = {"_xsrf": session.cookies["_xsrf"]}
    joined = session.post(f"{bot.url}/claim/{token}/join", data=data, timeout=10)
    assert joined.status_code == 409 and OWN_MOBILE in joined.text
    assert DrawEntry.select().count() == 0


@BOTH_DATABASES
def test_a_mobile_known_as_the_givers_after_it_joined_never_wins(bot):
    token = draw_of(bot, "o_giver")
    session = desktop()
    assert verify(bot, session, token).url.endswith(f"/claim/{token}")
    data = {"_xsrf": session.cookies["_xsrf"]}
    assert "你已参与抽奖" in session.post(f"{bot.url}/claim/{token}/join", data=data).text
    orders_elsewhere(bot, "o_giver", MOBILE)
    draw = Share.get(Share.token == token)
    bot.clock.offset += draw.draw_at - bot.clock() + dt.timedelta(minutes=1)
    bot.run(bot.services.sweep_once())
    assert DrawEntry.get().won is False
    assert Share.get(Share.token == token).quantity == 0, "its unit went back to stock"


@BOTH_DATABASES
def test_the_order_refuses_a_mobile_the_giver_used_meanwhile(bot):
    token = share_in_chat(bot, quantity="2")
    session = desktop()
    form = verify(bot, session, token)
    assert form.url.endswith("/form")
    orders_elsewhere(bot, "o_giver", MOBILE)  # while the form is open
    data = FORM | {"delivery": first_slot(bot), "_xsrf": xsrf(form)}
    refused = session.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10)
    assert refused.status_code == 409 and OWN_MOBILE in refused.text
    assert Order.select().where(Order.recipient == f"tel:{E164}").count() == 0
