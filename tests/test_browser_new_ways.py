"""The new ways to give as a person sees them, in headless Chromium: a draw's page at every
phase (open, joined, drawn and won, drawn and lost, the giver's, expired), a surprise's page,
and a desktop browser claiming end to end with a verified mobile. Screenshots go to
test-artifacts/screenshots/ (see tests/test_browser.py)."""

from __future__ import annotations

import datetime as dt
import re

from browsing import PHONE, needs_chromium, send, shot
from helpers import DESKTOP_UA, confirm_card, free_mode_only, monday_morning, say, share_in_chat

from storage.models import Order, Share

pytestmark = needs_chromium
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "user_agent": DESKTOP_UA}


def as_friend(chromium, bot, openid: str):
    """A phone in WeChat, logged in as `openid` through the fake OAuth."""
    bot.fake_wechat.set_user(openid)
    return chromium.new_context(**PHONE).new_page()


def test_a_draws_page_at_every_phase(chromium, bot):
    monday_morning(bot)
    for text in ("1", "抽奖", "1", "新年好运！", "跳过"):
        say(bot, "o_giver", text)
    token = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    url = f"{bot.url}/claim/{token}"
    say(bot, "o_gone", f"领取 {token}")
    bot.wx.unsubscribe("o_gone")  # joined in chat and left: cannot win

    winner = as_friend(chromium, bot, "o_winner")
    winner.goto(url)
    assert "抽奖规则" in winner.content()
    shot(winner, "draw-open")
    winner.click("text=参与抽奖")
    assert "你已参与抽奖" in winner.content() and "已有 2 人参与" in winner.inner_text(".draw")
    shot(winner, "draw-joined")
    giver = as_friend(chromium, bot, "o_giver")
    giver.goto(url)
    shot(giver, "draw-giver-before")

    share = Share.get()
    bot.clock.offset += share.draw_at - bot.clock() + dt.timedelta(minutes=1)
    bot.run(bot.services.sweep_once())
    winner.goto(url)
    assert "恭喜你抽中了" in winner.content()
    shot(winner, "draw-won")
    loser = as_friend(chromium, bot, "o_gone")
    loser.goto(url)
    assert "没有抽中" in loser.content()
    shot(loser, "draw-lost")
    giver.goto(url)
    assert "0 / 1 位中奖者已领取" in giver.content()
    shot(giver, "draw-giver-drawn")

    bot.clock.offset += dt.timedelta(hours=73)
    bot.run(bot.services.sweep_once())
    winner.goto(url)
    assert "已过期" in winner.content()
    shot(winner, "draw-expired")


def test_a_surprises_page_shows_a_wrapped_box(chromium, bot):
    monday_morning(bot)
    for text in ("1", "惊喜", "1", "生日快乐！"):
        say(bot, "o_giver", text)
    token = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    page = as_friend(chromium, bot, "o_friend")
    page.goto(f"{bot.url}/claim/{token}")
    assert "明前龙井" not in page.content() and "惊喜礼物" in page.title()
    shot(page, "surprise-page")


def test_a_desktop_browser_claims_end_to_end_with_a_verified_mobile(chromium, bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    page = chromium.new_context(**DESKTOP).new_page()
    page.goto(f"{bot.url}/claim/{token}")
    assert "微信以外" in page.content()
    shot(page, "outside-wechat")
    page.fill("input[name=phone]", "139 1234 5678")
    page.click("text=获取验证码")
    assert "139****5678" in page.content()
    shot(page, "outside-code")
    bot.drain()
    code = re.search(r"\b(\d{6})\b", bot.sms.received[-1]["text"]).group(1)
    page.fill("input[name=code]", code)
    page.click("text=验证并领取")
    page.wait_for_url(re.compile(r"/form$"))
    assert page.input_value("input[name=phone]") == "+8613912345678"
    shot(page, "outside-form")
    page.fill("input[name=name]", "张小红")
    page.fill("textarea[name=address]", "广东省深圳市南山区科技园南区 8 栋 1201")
    page.locator("input[name=delivery] + span").first.click()
    page.click("text=确认领取")
    page.wait_for_url(re.compile(r"/done$"))
    assert Order.get().order_no in page.content() and Order.get().phone == "+8613912345678"
    shot(page, "outside-done")


@free_mode_only("the draw is shared with 确认's card (a paid share's card comes once paid)")
def test_the_sandbox_plays_a_one_time_subscription_from_the_draw_page_to_the_service_notice(
    chromium, bot_factory
):
    """Friend 1 joins the giver's draw on its page, taps 微信通知我一次, allows it on the
    sandbox's stand-in of WeChat's page, and is back on the draw page, subscribed; at the draw
    the result arrives in 服务通知 (friend 1 never wrote to the account)."""
    bot = bot_factory(server={"sandbox": True})
    context = chromium.new_context(**PHONE)
    chat = context.new_page()
    chat.goto(f"{bot.url}/dev")
    for text in ("1", "抽奖", "1", "跳过", "跳过", "确认"):
        send(chat, text)
    card = chat.locator(".card-wrap").last
    with context.expect_page() as opened:
        card.get_by_role("link", name=re.compile("以好友身份打开")).click()
    friend = opened.value
    friend.wait_for_load_state()
    friend.click("text=参与抽奖")
    assert "你已参与抽奖" in friend.content()
    shot(friend, "subscribe-1-draw-joined-offers-a-subscription")
    friend.click("text=微信通知我一次")
    assert "申请向你发送一条订阅消息" in friend.inner_text("main")
    shot(friend, "subscribe-2-wechats-confirm-page-in-the-sandbox")
    friend.click("text=允许")
    friend.locator(".promise-subscribed").wait_for(timeout=10_000)
    assert "已订阅" in friend.inner_text(".promise")
    shot(friend, "subscribe-3-back-on-the-draw-page-subscribed")
    friend.close()

    share = Share.get()
    bot.clock.offset += share.draw_at - bot.clock()
    bot.run(bot.services.sweep_once())
    bot.drain()
    chat.bring_to_front()
    chat.locator(".notify-item").wait_for(timeout=10_000)
    assert "恭喜" in chat.inner_text("#notify") and "好友 1" in chat.inner_text("#notify")
    chat.locator("#notify-panel").scroll_into_view_if_needed()
    shot(chat, "subscribe-4-the-result-in-service-notices", full_page=False)
