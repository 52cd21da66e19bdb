"""What a person sees, in headless Chromium at a phone's size: the /dev sandbox used end to end,
and the pages (gift, claim, form with errors, confirmation) photographed for review.

Screenshots go to test-artifacts/screenshots/. Needs Debian's Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ARTIFACTS
from helpers import share_in_chat

from storage.models import Order

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium not installed at /usr/bin/chromium"
)
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}
SHOTS = ARTIFACTS / "screenshots"


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def sandbox(bot_factory):
    return bot_factory(server={"sandbox": True})


def shot(page, name: str) -> Path:
    """Photograph the page, after checking what a look would catch."""
    page.wait_for_load_state("load")
    broken = page.evaluate(
        "[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
    assert broken == [], f"{name}: images that do not load: {broken}"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow} px"
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def send(page, text: str) -> None:
    before = page.locator(".msg.bot").count()
    page.fill("#text", text)
    page.press("#text", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('.msg.bot').length > n", arg=before, timeout=10_000
    )


def test_a_newcomer_shares_and_claims_a_gift_in_the_sandbox(chromium, sandbox):
    giver = chromium.new_context(**PHONE).new_page()
    errors = []
    giver.on("pageerror", lambda e: errors.append(str(e)))
    giver.goto(f"{sandbox.url}/dev")
    for text in ("礼品", "1", "送", "1", "生日快乐！"):
        send(giver, text)
    send(giver, "确认")
    card = giver.locator("a.news").last
    assert "明前龙井礼盒" in card.inner_text()
    shot(giver, "sandbox-giver-shared")
    token = re.search(r"claim%2F([\w-]+)", card.get_attribute("href")).group(1)

    friend = chromium.new_context(**PHONE).new_page()
    friend.goto(f"{sandbox.url}/dev/as?openid=dev-friend-1&next=/claim/{token}")
    assert "生日快乐！" in friend.content()
    shot(friend, "sandbox-friend-claim-page")
    friend.click("text=领取礼物")
    friend.fill("input[name=name]", "张小红")
    friend.fill("input[name=phone]", "138 0013 8000")
    friend.fill("textarea[name=address]", "广东省深圳市南山区科技园南区 8 栋 1201")
    friend.locator("input[name=delivery] + span").first.click()
    friend.click("text=确认领取")
    friend.wait_for_url(re.compile(r"/done$"))
    order = Order.get()
    assert order.order_no in friend.content()
    shot(friend, "sandbox-friend-done")

    sandbox.drain()
    giver.wait_for_selector("text=客服消息", timeout=10_000)
    shot(giver, "sandbox-giver-notified")
    assert errors == []


def test_the_form_shows_each_error_beside_its_field(chromium, bot):
    token = share_in_chat(bot, number="3", blessing="祝你 <3 & 开心 😊")
    bot.fake_wechat.set_user("o_friend")
    page = chromium.new_context(**PHONE).new_page()
    page.goto(f"{bot.url}/claim/{token}")  # through the fake OAuth, as in WeChat
    assert "祝你 <3 & 开心 😊" in page.inner_text(".blessing")
    shot(page, "claim-page")
    page.goto(f"{bot.url}/gifts/flowers")
    shot(page, "gift-page")
    page.goto(f"{bot.url}/claim/{token}/form")
    shot(page, "form-empty")
    page.fill("input[name=phone]", "12345")
    page.fill("textarea[name=address]", "深圳")
    page.click("text=确认领取")
    assert page.locator('[aria-invalid="true"]').count() >= 4
    assert page.input_value("input[name=phone]") == "12345"
    shot(page, "form-errors")
    page.goto(f"{bot.url}/claim/AAAAAAAAAAAAAAAAAAAAAA")
    shot(page, "not-found")
