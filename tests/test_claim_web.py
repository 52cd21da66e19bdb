"""S11–S14 on the real server: share in chat, open the link through OAuth, fill the form,
one order, its SMS and the giver's notice."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
import requests
from helpers import FORM, WECHAT_UA, browser, claim, claim_messages, first_slot, share_in_chat, xsrf

from storage.models import Gift, Order, Outbox, Share

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


def test_the_whole_path_from_share_to_sms_and_giver_notice(bot):
    token = share_in_chat(bot)
    assert Gift.get_by_id("tea-longjing").committed == 1  # reserved at once
    phone = browser(bot, "o_friend")

    page = phone.get(f"{bot.url}/claim/{token}", timeout=10)
    assert page.status_code == 200 and "明前龙井礼盒" in page.text and "生日快乐！" in page.text
    assert any("/connect/oauth2/authorize" in c[0] for c in bot.fake_wechat.calls)
    cookie = next(c for c in phone.cookies if c.name == "gb_openid")
    assert cookie.has_nonstandard_attr("HttpOnly")

    done = claim(bot, phone, token)
    assert done.status_code == 200 and done.url.endswith(f"/claim/{token}/done")
    order = Order.get()
    assert order.order_no in done.text and "明前龙井礼盒" in done.text
    assert (order.recipient_id, order.phone, order.name) == ("o_friend", "+8613800138000", "张小红")
    assert order.region == "广东省深圳市南山区" and "8 栋 1201" in order.address_detail

    assert bot.drain() == 2
    (sms,) = bot.sms.received
    assert sms["phone"] == "+8613800138000" and sms["template"] == "order_placed"
    assert order.order_no in sms["text"] and "明前龙井礼盒" in sms["text"]
    assert len(sms["text"]) <= 70, "fits one SMS segment"
    (notice,) = bot.fake_wechat.messages
    assert notice["touser"] == "o_giver" and "明前龙井礼盒" in notice["text"]["content"]
    assert "138" not in notice["text"]["content"] and "南山" not in notice["text"]["content"]
    assert claim_messages().where(Outbox.status == "sent").count() == 2


def test_every_field_error_is_shown_beside_the_field_and_nothing_typed_is_lost(bot):
    token = share_in_chat(bot)
    phone = browser(bot, "o_friend")
    bad = claim(bot, phone, token, name="", phone="12345", address="深圳", delivery="someday")
    assert bad.status_code == 400
    assert Order.select().count() == 0
    for message in ("姓名", "手机", "地址"):
        assert message in bad.text
    assert 'value="12345"' in bad.text and ">深圳</textarea>" in bad.text
    assert bad.text.count('aria-invalid="true"') == 4


def test_a_double_submitted_form_makes_one_order_and_the_same_confirmation(bot):
    token = share_in_chat(bot, quantity="2")
    phone = browser(bot, "o_friend")
    form_page = phone.get(f"{bot.url}/claim/{token}/form", timeout=10)
    data = FORM | {"delivery": first_slot(bot), "_xsrf": xsrf(form_page)}
    first = phone.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10)
    second = phone.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10)
    assert Order.select().count() == 1
    assert first.url == second.url and Order.get().order_no in second.text
    assert Share.get().claimed == 1


def test_second_claimant_on_a_one_unit_share_is_told_the_gift_is_gone(bot):
    token = share_in_chat(bot)
    claim(bot, browser(bot, "o_first"), token)
    late = browser(bot, "o_second")
    page = late.get(f"{bot.url}/claim/{token}", timeout=10)
    assert "领完" in page.text and "/form" not in page.text
    assert late.get(f"{bot.url}/claim/{token}/form", timeout=10).status_code == 409
    assert Order.select().count() == 1


def test_the_giver_cannot_claim_their_own_gift(bot):
    token = share_in_chat(bot, giver="o_giver")
    own = browser(bot, "o_giver")
    page = own.get(f"{bot.url}/claim/{token}", timeout=10)
    assert "你送出的礼物" in page.text and f"/claim/{token}/form" not in page.text
    form = own.get(f"{bot.url}/claim/{token}/form", timeout=10, allow_redirects=False)
    assert (form.status_code, form.headers["Location"]) == (303, f"/claim/{token}")
    assert Order.select().count() == 0


def test_a_share_of_three_is_claimed_by_three_people_and_then_is_used_up(bot):
    token = share_in_chat(bot, quantity="3")
    slow = browser(bot, "o_f4")
    slow_form = slow.get(f"{bot.url}/claim/{token}/form", timeout=10)  # opened, not yet sent
    for friend in ("o_f1", "o_f2", "o_f3"):
        assert claim(bot, browser(bot, friend), token).url.endswith("/done")
    assert Order.select().count() == 3 and Share.get().claimed == 3
    data = FORM | {"delivery": first_slot(bot), "_xsrf": xsrf(slow_form)}
    too_late = slow.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10)
    assert too_late.status_code == 409 and "领完" in too_late.text
    bot.drain()
    assert len(bot.sms.received) == 3 and len(bot.fake_wechat.messages) == 3
    status = bot.wx.click("o_giver", "MY_GIFTS")["Content"]
    assert "已全部领取" in status and "138" not in status


@pytest.mark.parametrize("token", ["AAAAAAAAAAAAAAAAAAAAAA", "short", "bad%20token!", "x" * 200])
def test_unknown_and_malformed_tokens_are_404_with_no_hint(bot, token):
    share_in_chat(bot)
    page = requests.get(f"{bot.url}/claim/{token}", timeout=10, allow_redirects=False)
    assert page.status_code == 404
    assert "明前龙井" not in page.text and "oauth" not in page.text


def test_a_blessing_with_html_is_shown_as_text(bot):
    """The chat refuses markup in a blessing now; one stored before that is still only text."""
    token = share_in_chat(bot)
    Share.update(blessing='<script>alert("x")</script><b>hi</b>').execute()
    page = browser(bot, "o_friend").get(f"{bot.url}/claim/{token}", timeout=10)
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;hi&lt;/b&gt;" in page.text


def test_a_post_without_xsrf_token_is_refused(bot):
    token = share_in_chat(bot)
    phone = browser(bot, "o_friend")
    phone.get(f"{bot.url}/claim/{token}", timeout=10)
    data = FORM | {"delivery": first_slot(bot)}
    assert phone.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10).status_code == 403
    assert Order.select().count() == 0


def test_oauth_callback_with_a_state_we_did_not_issue_is_refused(bot):
    code = bot.fake_wechat.issue_code("o_attacker")
    r = requests.get(f"{bot.url}/oauth/callback?code={code}&state=forged", timeout=10)
    assert r.status_code == 400 and "gb_openid" not in r.cookies


def test_oauth_refused_by_the_user_is_403(bot):
    token = share_in_chat(bot)
    bot.fake_wechat.set_user("o_friend", consents=False)
    r = requests.get(f"{bot.url}/claim/{token}", headers={"User-Agent": WECHAT_UA}, timeout=10)
    assert r.status_code == 403


def test_the_claim_qr_is_created_through_the_api_once_and_drawn_by_the_bot(bot):
    token = share_in_chat(bot)
    first = requests.get(f"{bot.url}/claim/{token}/qr.svg", timeout=10)
    again = requests.get(f"{bot.url}/claim/{token}/qr.svg", timeout=10)
    assert first.status_code == 200 and first.headers["Content-Type"] == "image/svg+xml"
    # A standalone SVG document: without its namespace a browser shows a broken image.
    assert ElementTree.fromstring(first.text).tag == "{http://www.w3.org/2000/svg}svg"
    assert again.text == first.text
    assert [q["scene"] for q in bot.fake_wechat.qrcodes] == [token]


def test_the_claim_page_renders_when_wechat_cannot_make_its_qr(bot):
    token = share_in_chat(bot)
    bot.fake_wechat.fail_next("/cgi-bin/qrcode/create", status=502)
    page = browser(bot, "o_friend").get(f"{bot.url}/claim/{token}", timeout=10)
    assert page.status_code == 200 and "领取礼物" in page.text
    assert "二维码暂时生成不了" in page.text and "qr.svg" not in page.text
    qr = requests.get(f"{bot.url}/claim/{token}/qr.svg", timeout=10)
    assert qr.status_code == 503 and "Traceback" not in qr.text
    assert len(bot.fake_wechat.qrcodes) == 0, "after a failure WeChat is not asked again at once"


def set_cookies(response: requests.Response) -> dict[str, str]:
    """Each Set-Cookie of a response, by cookie name (requests would hide Secure cookies on http)."""
    return {line.split("=", 1)[0]: line for line in response.raw.headers.getlist("Set-Cookie")}


def test_cookies_are_secure_when_the_public_address_is_https_even_behind_a_plain_proxy(
    bot_factory,
):
    bot = bot_factory(server={"public_url": "https://gift.example.com"})
    token = share_in_chat(bot)
    bot.fake_wechat.set_user("o_friend")
    page = requests.get(
        f"{bot.url}/claim/{token}", headers={"User-Agent": WECHAT_UA}, timeout=10,
        allow_redirects=False,
    )  # fmt: skip
    state_cookie = set_cookies(page)["gb_oauth"]
    assert "Secure" in state_cookie and "HttpOnly" in state_cookie
    consent = requests.get(page.headers["Location"], timeout=10, allow_redirects=False)
    back = consent.headers["Location"].replace("https://gift.example.com", bot.url)
    cookie = state_cookie.split(";", 1)[0]
    landed = requests.get(back, headers={"Cookie": cookie}, timeout=10, allow_redirects=False)
    openid_cookie = set_cookies(landed)["gb_openid"]
    assert landed.status_code == 302 and "Secure" in openid_cookie
    form = requests.get(
        f"{bot.url}/claim/{token}/form",
        headers={"Cookie": openid_cookie.split(";", 1)[0]},
        timeout=10,
    )
    assert form.status_code == 200 and "Secure" in set_cookies(form)["_xsrf"]


def test_a_form_post_over_16_kb_is_413_and_orders_nothing(bot):
    token = share_in_chat(bot)
    phone = browser(bot, "o_friend")
    page = phone.get(f"{bot.url}/claim/{token}/form", timeout=10)
    r = phone.post(
        f"{bot.url}/claim/{token}/form",
        data={**FORM, "_xsrf": xsrf(page), "address": "广东省深圳市南山区" + "8" * 20_000},
        timeout=10,
    )
    assert r.status_code == 413 and Order.select().count() == 0
