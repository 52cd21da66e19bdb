"""A sandbox you can follow (issue 26), in headless Chromium on the real server: every page
says which sandbox user it acts as; switching to another is a choice, never silent; a form
from a page opened as someone else is refused rather than acted on as whoever the cookie
names now; a draw's status page has 立即开奖, which draws it by the sweep's own code.
Screenshots go to test-artifacts/screenshots/sandbox-*.png."""

from __future__ import annotations

import re

import pytest
import requests
from browsing import PHONE, needs_chromium, shot
from helpers import confirm_card, free_mode_only, say, share_in_chat

from handlers.web.sandbox import FIELD
from storage.models import DrawEntry, Order, Share

pytestmark = needs_chromium


@pytest.fixture
def sandbox(bot_factory):
    return bot_factory(server={"sandbox": True})


def as_user(context, bot, openid: str, path: str):
    page = context.new_page()
    page.goto(f"{bot.url}/dev/as?openid={openid}&next={path}")
    return page


def banner(page) -> str:
    return page.inner_text(".sandbox-banner")


@free_mode_only("the claim form of a free gift is the page under test")
def test_every_page_says_who_it_acts_as_and_switching_asks_first(chromium, sandbox):
    token = share_in_chat(sandbox, giver="dev-giver", quantity="2")
    context = chromium.new_context(**PHONE)

    giver = as_user(context, sandbox, "dev-giver", f"/claim/{token}")
    assert "此页以 「送礼人」（dev-giver） 的身份打开" in " ".join(banner(giver).split())
    assert "你送出的礼物" in giver.inner_text("main")
    shot(giver, "sandbox-1-banner-giver")

    # The friend's link in the same browser: it asks before the browser becomes someone else.
    friend = as_user(context, sandbox, "dev-friend-1", f"/claim/{token}")
    assert "换成 「好友 1」" in friend.inner_text("h1")
    assert "其他已打开的页面" in friend.inner_text("main")
    shot(friend, "sandbox-2-switch-asks")
    friend.get_by_role("link", name=re.compile("并打开")).click()
    friend.wait_for_url(re.compile(f"/claim/{token}$"))
    assert "「好友 1」" in banner(friend) and "领取礼物" in friend.inner_text("main")

    # 换人 on the banner is the login page, which goes back to the same page.
    friend.get_by_role("link", name="换人").click()
    assert "以哪个微信用户打开" in friend.inner_text("h1")


@free_mode_only("the claim form of a free gift is the page under test")
def test_a_form_from_a_page_opened_as_someone_else_is_refused_not_acted_on(chromium, sandbox):
    token = share_in_chat(sandbox, giver="dev-giver", quantity="2")
    context = chromium.new_context(**PHONE)
    form = as_user(context, sandbox, "dev-friend-1", f"/claim/{token}/form")
    form.fill("input[name=name]", "张小红")
    form.fill("input[name=phone]", "138 0013 8000")
    form.fill("textarea[name=address]", "广东省深圳市南山区科技园南区 8 栋 1201")
    form.locator("input[name=delivery] + span").first.click()

    other = as_user(context, sandbox, "dev-friend-2", f"/claim/{token}")
    other.get_by_role("link", name=re.compile("并打开")).click()  # chosen, in another tab
    assert "「好友 2」" in banner(other)

    form.click("text=确认领取")
    form.wait_for_load_state()
    assert "身份已经换了" in form.inner_text("h1")
    assert "「好友 1」" in form.inner_text("main") and "「好友 2」" in form.inner_text("main")
    assert Order.select().count() == 0, "nothing done as 好友 2"
    shot(form, "sandbox-3-stale-form-refused")
    form.get_by_role("link", name=re.compile("以 「好友 1」.*重新打开")).click()
    form.wait_for_url(re.compile(f"/claim/{token}"))
    assert "「好友 1」" in banner(form)

    # pay.js asks for JSON: the same refusal, as an error it shows.
    session = requests.Session()
    session.get(f"{sandbox.url}/dev/as?openid=dev-friend-2&next=/", timeout=10)
    page = session.get(f"{sandbox.url}/claim/{token}/form", timeout=10)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    refused = session.post(
        f"{sandbox.url}/claim/{token}/form",
        data={"_xsrf": xsrf, FIELD: "dev-friend-1", "name": "李四"},
        headers={"Accept": "*/*"},
        timeout=10,
    )
    assert refused.status_code == 409 and "身份" in refused.json()["error"]


def test_a_draws_status_page_in_the_sandbox_draws_now(chromium, sandbox):
    for text in ("1", "抽奖", "1", "新年好运！", "跳过"):
        say(sandbox, "dev-giver", text)
    token = confirm_card(sandbox.wx, "dev-giver")["Url"].rsplit("/", 1)[1]
    for friend in ("dev-friend-1", "dev-friend-2"):
        say(sandbox, friend, f"领取 {token}")
    context = chromium.new_context(**PHONE)

    status = as_user(context, sandbox, "dev-giver", f"/claim/{token}")
    assert "抽奖进行中" in status.inner_text("main")
    shot(status, "sandbox-4-draw-before")
    status.get_by_role("button", name="立即开奖").click()
    status.wait_for_load_state()

    assert "已开奖" in status.inner_text("main")
    assert status.get_by_role("button", name="立即开奖").count() == 0
    share = Share.get()
    assert share.drawn_at is not None and share.draw_at == share.drawn_at
    assert DrawEntry.select().where(DrawEntry.won).count() == 1
    sandbox.drain()
    told = [i["to"] for i in sandbox.services.inbox.since(0) if i["channel"] == "wechat"]
    assert sorted(told) == ["dev-friend-1", "dev-friend-2", "dev-giver"]
    shot(status, "sandbox-5-draw-drawn")


def test_without_the_sandbox_no_banner_and_no_early_draw(bot):
    token = share_in_chat(bot)
    page = requests.get(f"{bot.url}/claim/{token}", timeout=10)
    assert "sandbox-banner" not in page.text and "立即开奖" not in page.text
    assert requests.post(f"{bot.url}/dev/draw/{token}", timeout=10).status_code in (403, 404)
