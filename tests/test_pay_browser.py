"""The pay page in headless Chromium at a phone's size: its button asks for a new JSAPI order
and hands the signed arguments to WeChat's JS bridge (played here by a page script, as in
WeChat's browser); the sandbox's 模拟支付成功 pays through the stand-in. Screenshots go to
test-artifacts/screenshots/."""

from __future__ import annotations

import pytest
from browsing import PHONE, needs_chromium, shot
from fakes.wechatpay import eventually
from paying import share_to_pay

from storage.models import PayOrder, Share

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
    page.click("text=模拟支付成功")
    assert eventually(lambda: Share.get(Share.token == token).payment == "paid")
    page.goto(f"{bot.url}/pay/{token}")
    assert "已经付过款了" in page.inner_text("main")
    shot(page, "pay_page_paid")
