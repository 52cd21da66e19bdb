"""Outside WeChat: a claim link opened in another browser offers the account's QR and a
verified mobile (a 6-digit code by SMS through the [sms] backend), never WeChat's login;
codes expire, die after five wrong tries, are rate limited, hashed and never logged; one
order per verified mobile per share."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
from helpers import (
    BOTH_DATABASES,
    FORM,
    browser,
    claim,
    confirm_card,
    first_slot,
    monday_morning,
    share_in_chat,
)
from mobile import E164, MOBILE, ask_code, code_sent, desktop, enter, xsrf_of

from storage.models import DrawEntry, MobileCode, Order, Outbox


@pytest.fixture(autouse=True)
def monday(bot) -> dt.date:
    return monday_morning(bot)


def verified(bot, token, mobile=MOBILE) -> requests.Session:
    session = desktop()
    assert ask_code(bot, session, token, mobile).status_code == 200
    assert enter(bot, session, token, code_sent(bot, "+86" + mobile)).url.endswith("/form")
    return session


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_a_link_outside_wechat_offers_the_qr_and_a_mobile_instead_of_wechat_login(bot):
    token = share_in_chat(bot)
    calls = len(bot.fake_wechat.calls)  # the giver's own (a paid run: the pay page's login)
    page = desktop().get(f"{bot.url}/claim/{token}", timeout=10, allow_redirects=False)
    assert page.status_code == 200 and "微信以外" in page.text and "用手机号领取" in page.text
    assert f"/claim/{token}/qr.svg" in page.text and "明前龙井礼盒" in page.text
    assert not any("oauth2/authorize" in c[0] for c in bot.fake_wechat.calls[calls:])
    in_wechat = browser(bot, "o_friend").get(f"{bot.url}/claim/{token}", allow_redirects=False)
    assert in_wechat.status_code == 302, "WeChat's own browser still logs in with WeChat"


def test_a_desktop_browser_claims_with_a_verified_mobile_fixed_in_the_form(bot, log_lines):
    token = share_in_chat(bot)
    session = desktop()
    sent = ask_code(bot, session, token)
    assert sent.status_code == 200 and "验证码已发到 139****5678" in sent.text
    code = code_sent(bot)
    body = bot.sms.received[-1]
    assert body["template"] == "login_code" and body["params"] == {"code": code}
    row = MobileCode.get()
    assert code not in row.code_hash and len(row.code_hash) == 64, "kept only as an HMAC"
    stored = json.dumps([r.payload for r in Outbox.select()])
    assert code not in stored, "the outbox keeps it sealed"

    landed = enter(bot, session, token, code)
    assert landed.url.endswith(f"/claim/{token}/form") and "已验证的手机号" in landed.text
    assert f'value="{E164}" readonly' in landed.text
    data = FORM | {"phone": "13800138000", "delivery": first_slot(bot), "_xsrf": xsrf_of(session)}
    done = session.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10)
    assert done.status_code == 200 and "领取成功" in done.text
    order = Order.get()
    assert order.phone == E164, "the verified mobile, whatever the form sent"
    assert order.recipient_id == f"tel:{E164}"
    assert all(code not in json.dumps(line, ensure_ascii=False) for line in log_lines())


def test_wrong_codes_are_refused_and_five_end_the_code(bot):
    token = share_in_chat(bot)
    session = desktop()
    ask_code(bot, session, token)
    code = code_sent(bot)
    for left in (4, 3, 2, 1):
        refused = enter(bot, session, token, wrong(code))
        assert refused.status_code == 400 and f"还可以再试 {left} 次" in refused.text
    ended = enter(bot, session, token, wrong(code))
    assert ended.status_code == 400 and "已经失效" in ended.text
    late = enter(bot, session, token, code)
    assert late.status_code == 400 and "已经失效" in late.text, "even the right code now"
    assert "gb_openid" not in session.cookies


def test_an_expired_code_is_refused(bot):
    token = share_in_chat(bot)
    session = desktop()
    ask_code(bot, session, token)
    code = code_sent(bot)
    bot.clock.offset += dt.timedelta(minutes=5, seconds=1)
    expired = enter(bot, session, token, code)
    assert expired.status_code == 400 and "已过期" in expired.text


@BOTH_DATABASES
def test_codes_are_limited_per_number_a_minute_and_an_hour_and_per_ip(bot):
    token = share_in_chat(bot)
    session = desktop()
    assert ask_code(bot, session, token).status_code == 200
    again = ask_code(bot, session, token)
    assert again.status_code == 429 and "一分钟只能获取一次" in again.text
    for _ in range(4):
        bot.clock.offset += dt.timedelta(seconds=61)
        assert ask_code(bot, session, token).status_code == 200
    bot.clock.offset += dt.timedelta(seconds=61)
    hourly = ask_code(bot, session, token)
    assert hourly.status_code == 429 and "一小时内" in hourly.text
    bot.drain()
    assert len([m for m in bot.sms.received if m["phone"] == E164]) == 5
    bot.clock.offset += dt.timedelta(seconds=61)
    assert ask_code(bot, session, token, "13700000000").status_code == 200
    same_minute = ask_code(bot, session, token, "13700000001")
    assert same_minute.status_code == 429 and "这个网络" in same_minute.text
    for n in range(1, 5):
        bot.clock.offset += dt.timedelta(seconds=61)
        assert ask_code(bot, session, token, f"1370000000{n}").status_code == 200
    bot.clock.offset += dt.timedelta(seconds=61)
    by_ip = ask_code(bot, session, token, "13700000009")
    assert by_ip.status_code == 429 and "这个网络" in by_ip.text, "ten an hour from one network"
    assert MobileCode.select().count() == 10


@BOTH_DATABASES
def test_one_order_per_verified_mobile_per_share(bot):
    token = share_in_chat(bot, quantity="3")
    session = verified(bot, token)
    data = FORM | {"delivery": first_slot(bot), "_xsrf": xsrf_of(session)}
    assert session.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10).ok
    bot.clock.offset += dt.timedelta(minutes=2)
    again = ask_code(bot, desktop(), token)
    assert again.status_code == 400 and "已经领取过" in again.text
    assert Order.select().count() == 1


def test_a_mobile_that_ordered_in_wechat_is_refused(bot):
    token = share_in_chat(bot, quantity="2")
    assert claim(bot, browser(bot, "o_friend"), token, phone=MOBILE).status_code == 200
    refused = ask_code(bot, desktop(), token)
    assert refused.status_code == 400 and "已经领取过" in refused.text
    assert MobileCode.select().count() == 0


def test_the_mobile_forms_need_their_xsrf_token(bot):
    token = share_in_chat(bot)
    session = desktop()
    session.get(f"{bot.url}/claim/{token}", timeout=10)
    r = session.post(f"{bot.url}/claim/{token}/mobile", data={"phone": MOBILE}, timeout=10)
    assert r.status_code == 403 and MobileCode.select().count() == 0
    r = session.post(f"{bot.url}/claim/{token}/mobile/verify", data={"code": "123456"})
    assert r.status_code == 403


def test_without_a_vendor_template_for_codes_only_the_qr_is_offered(bot_factory):
    bot = bot_factory(sms={"backend": "aliyun", "aliyun": {
        "access_key_id": "ak", "access_key_secret": "sk", "sign_name": "礼物小助手",
        "template_code": "SMS_1"}})  # fmt: skip
    token = share_in_chat(bot)
    page = desktop().get(f"{bot.url}/claim/{token}", timeout=10)
    assert page.status_code == 200 and "用手机号领取" not in page.text and "qr.svg" in page.text
    session = desktop()
    session.cookies.set("_xsrf", "0f" * 16)  # the page has no form: post anyway
    data = {"phone": MOBILE, "_xsrf": "0f" * 16}
    assert session.post(f"{bot.url}/claim/{token}/mobile", data=data).status_code == 404


def test_a_verified_mobile_joins_a_draw_on_its_page(bot):
    for text in ("1", "抽奖", "1", "跳过", "跳过"):
        bot.wx.text("o_giver", text)
    token = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    session = desktop()
    assert "用手机号参与抽奖" in session.get(f"{bot.url}/claim/{token}", timeout=10).text
    assert ask_code(bot, session, token).status_code == 200
    page = enter(bot, session, token, code_sent(bot))
    assert page.url.endswith(f"/claim/{token}") and "参与抽奖</button>" in page.text
    data = {"_xsrf": xsrf_of(session)}
    joined = session.post(f"{bot.url}/claim/{token}/join", data=data, timeout=10)
    assert "你已参与抽奖" in joined.text
    assert [(e.openid, e.via) for e in DrawEntry.select()] == [(f"tel:{E164}", "web")]
