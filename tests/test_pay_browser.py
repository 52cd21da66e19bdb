"""The pay page in headless Chromium at a phone's size: its button asks for a new JSAPI order
and hands the signed arguments to WeChat's JS bridge (played here by a page script, as in
WeChat's browser); the sandbox's 模拟支付成功 pays through the stand-in. Screenshots go to
test-artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest
from browsing import PHONE, needs_chromium, send, shot
from fakes.wechatpay import eventually
from paying import share_to_pay

from bot.render import money
from storage.models import PayOrder, Refund, Share

pytestmark = needs_chromium

# What WeChat's browser provides: the bridge. This one records its call and says "ok".
BRIDGE = """
window.WeixinJSBridge = {invoke: function (name, args, done) {
  window.bridgeCalls = (window.bridgeCalls || []).concat([[name, args]]);
  done({err_msg: "get_brand_wcpay_request:ok"});
}};
"""


@pytest.fixture
def paying_sandbox(bot_factory):
    return bot_factory(server={"sandbox": True}, payments={"mode": "wechatpay"})


def test_the_pay_page_hands_a_signed_order_to_the_bridge_then_pays_in_the_sandbox(
    chromium,  # noqa: F811
    paying_sandbox,
):
    bot = paying_sandbox
    token = share_to_pay(bot, quantity="2")
    context = chromium.new_context(**PHONE)
    context.add_init_script(BRIDGE)
    page = context.new_page()
    page.goto(f"{bot.url}/dev/as?openid=o_giver&next=/pay/{token}")
    assert "微信支付" in page.inner_text("#pay button")
    shot(page, "pay_page")
    page.click("#pay button")
    # polled from here: the page's CSP (script-src 'self') refuses wait_for_function's eval
    for _ in range(100):
        if page.evaluate("(window.bridgeCalls || []).length") == 1:
            break
        page.wait_for_timeout(50)
    name, args = page.evaluate("window.bridgeCalls[0]")
    assert name == "getBrandWCPayRequest"
    assert set(args) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert args["package"] == f"prepay_id={PayOrder.get().prepay_id}" and args["signType"] == "RSA"
    page.wait_for_url(f"{bot.url}/pay/{token}")  # "ok" is a hint: the page asks the server
    assert "正在等微信支付确认付款" in page.inner_text("#pay-status")
    # WeChat Pay takes the money elsewhere (the sandbox's 模拟支付成功 form, posted from
    # behind this page, which stays where it is): clicking it would load a new page, and that
    # one may already know (the notification can beat the redirect).
    page.evaluate(
        """() => fetch(document.querySelector("form[action$='/simulate']").action,
                       {method: "POST", credentials: "same-origin",
                        body: new FormData(document.querySelector("form[action$='/simulate']"))})
                 .then(r => r.status)"""
    )
    assert eventually(lambda: Share.get(Share.token == token).payment == "paid")
    # The page moves on by itself once the server knows (static/pay.js): nobody reloads it.
    page.locator("main", has_text="已经付过款了").wait_for(timeout=10_000)
    assert page.url == f"{bot.url}/pay/{token}"
    shot(page, "pay_page_paid")


def test_the_sandbox_story_of_a_paid_and_refunded_gift(chromium, paying_sandbox):  # noqa: F811
    """The giver buys two, pays on the pay page (模拟支付成功: the page waits for WeChat Pay's
    notification, then says it went through), finds the card with its sandbox buttons in the
    chat, withdraws the share and hears of the refund, with its amount, once the built-in
    WeChat Pay settled it. Only /dev is typed."""
    bot = paying_sandbox
    context = chromium.new_context(**PHONE)
    errors: list[str] = []
    context.on("page", lambda p: p.on("pageerror", lambda e: errors.append(str(e))))
    chat = context.new_page()
    chat.goto(f"{bot.url}/dev")
    for text in ("礼品", "1", "送", "2", "跳过"):
        send(chat, text)
    send(chat, "确认")
    pay_link = chat.locator(".msg.bot").last.locator("a.link", has_text="/pay/")
    token = pay_link.inner_text().rsplit("/", 1)[1]
    shot(chat, "paid-story-1-pay-link")

    with context.expect_page() as opened:
        pay_link.click()
    pay = opened.value
    pay.wait_for_load_state()
    assert "微信支付 ¥" in pay.inner_text("#pay button")
    # A page that came back from paying waits for WeChat Pay's notification (polling
    # /pay/<token>/state): opened before anything was paid, it waits on screen.
    waiting = context.new_page()
    waiting.goto(f"{bot.url}/pay/{token}?paying=1")
    assert "正在等微信支付确认付款" in waiting.inner_text("#pay-status")
    shot(waiting, "paid-story-2-waiting-for-the-notification")
    pay.click("text=模拟支付成功")  # loads /pay/<token>?paying=1, which may already know
    paid_at = {
        pay: re.compile(re.escape(f"{bot.url}/pay/{token}") + r"(\?paying=1)?$"),
        waiting: f"{bot.url}/pay/{token}",  # moves on by itself
    }
    for page in (pay, waiting):  # both see the notification come, and say so
        page.locator("h1", has_text="付款成功").wait_for(timeout=10_000)
        # (a heading may show a moment before the address changes)
        page.wait_for_url(paid_at[page], timeout=10_000)
        assert "礼物卡已发到公众号对话里" in page.inner_text("main")
    waiting.close()
    assert Share.get(Share.token == token).payment == "paid"
    shot(pay, "paid-story-3-paid")
    pay.close()

    chat.bring_to_front()
    bot.drain()  # the card leaves through the outbox (serve's worker does this by itself)
    card = chat.locator(".card-wrap").last
    card.wait_for(timeout=10_000)
    assert "明前龙井礼盒" in card.inner_text()
    assert card.get_by_role("link", name=re.compile("以好友身份打开")).is_visible()
    assert card.get_by_role("button", name="转发给…").is_visible()
    shot(chat, "paid-story-4-card-in-the-chat")

    price = Share.get(Share.token == token).unit_price
    send(chat, "我送出的")
    send(chat, "撤回 1")
    assert f"{money(2 * price)} 会原路退款给你" in chat.locator(".msg.bot").last.inner_text()
    for _ in range(100):  # the refund: sent, settled by the built-in WeChat Pay, notified
        bot.drain()
        if Refund.get().status == "success":
            break
        chat.wait_for_timeout(100)
    bot.drain()
    told = chat.locator(".msg.bot", has_text="退款成功")
    told.wait_for(timeout=10_000)
    assert f"{money(2 * price)} 已原路退回" in told.inner_text()
    shot(chat, "paid-story-5-refund-told", full_page=False)
    assert errors == []
