"""Making it personal as a person sees it, in headless Chromium at phone size (390 px): the
claim page with the giver's picture and voice (the play button plays), the giver's page with a
swapped claim and a refused picture, the list of gifts to swap to and the form after a swap,
and the sandbox's controls for sending a picture and a voice. Screenshots go to
test-artifacts/screenshots/personal-*.png."""

from __future__ import annotations

from pathlib import Path

from browsing import PHONE, needs_chromium, send, shot
from helpers import confirm_card, free_mode_only, monday_morning, needs_ffmpeg, say

from storage.models import GreetingMedia, Order

pytestmark = needs_chromium
SAMPLES = Path(__file__).resolve().parent / "samples" / "media"
WORDS = "生日快乐，祝你天天开心"


def as_user(chromium, bot, openid: str):
    bot.fake_wechat.set_user(openid)
    return chromium.new_context(**PHONE).new_page()


def share_with_greeting(bot, giver="o_giver", picture="pic", voice="voice") -> str:
    for text in ("1", "送", "1"):
        say(bot, giver, text)
    if picture:
        bot.wx.image(giver, picture)
    if voice:
        bot.wx.voice(giver, voice, recognition=WORDS)
    else:
        say(bot, giver, "生日快乐！")
    return confirm_card(bot.wx, giver)["Url"].rsplit("/", 1)[1]


@needs_ffmpeg
def test_the_claim_page_shows_the_picture_and_plays_the_voice(chromium, bot):
    monday_morning(bot)
    bot.fake_wechat.add_media("pic", (SAMPLES / "photo_with_gps.jpg").read_bytes(), "image/jpeg")
    bot.fake_wechat.add_media("voice", (SAMPLES / "greeting.amr").read_bytes(), "audio/amr")
    token = share_with_greeting(bot)
    bot.drain()
    page = as_user(chromium, bot, "o_friend")
    page.goto(f"{bot.url}/claim/{token}")
    assert page.locator(".greeting-pic").evaluate("i => i.naturalWidth") == 900
    assert WORDS in page.inner_text(".voice-words")
    assert page.evaluate(
        "document.querySelector('audio').canPlayType('audio/mp4; codecs=\"mp4a.40.2\"')"
    )
    page.click(".voice-play")
    page.wait_for_selector(".voice-play.playing", timeout=5000)  # the audio's play event came
    shot(page, "personal-claim-picture-and-voice")
    page.wait_for_selector(".voice-play:not(.playing)", timeout=15000)  # played to its end
    assert page.evaluate("document.querySelector('audio').ended")
    assert page.evaluate("document.querySelector('audio').duration") > 5


def test_the_givers_page_with_a_swap_and_a_refused_picture(chromium, bot_factory):
    bot = bot_factory(shares={"swap": "up_to_price"})
    monday_morning(bot)
    bot.fake_wechat.add_media("bad", b"not a picture", "image/jpeg")
    for text in ("1", "送", "2"):
        say(bot, "o_giver", text)
    bot.wx.image("o_giver", "bad")
    say(bot, "o_giver", "生日快乐！")
    token = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    bot.drain()
    assert GreetingMedia.get().status == "failed"

    friend = as_user(chromium, bot, "o_friend")
    friend.goto(f"{bot.url}/claim/{token}/form")
    friend.click("text=换一个礼物")
    assert "想换成哪一份" in friend.content() and "¥100–200" in friend.content()
    shot(friend, "personal-swap-list")
    friend.click('a[aria-label="换成流心奶黄月饼"]')
    assert "你换成了" in friend.content()
    shot(friend, "personal-form-after-swap")
    friend.fill("#f-name", "张小红")
    friend.fill("#f-phone", "13800138000")
    friend.fill("#f-address", "广东省深圳市南山区科技园南区 8 栋 1201")
    friend.locator(".days .choice span").first.click()
    friend.click("text=确认领取")
    assert "领取成功" in friend.content() and "流心奶黄月饼" in friend.content()
    assert Order.get().swapped_from == "tea-longjing"

    giver = as_user(chromium, bot, "o_giver")
    giver.goto(f"{bot.url}/claim/{token}")
    text = giver.inner_text("main")
    assert "好友换成了「流心奶黄月饼」" in text and "图片没能用上" in text
    shot(giver, "personal-giver-status")


@needs_ffmpeg
@free_mode_only("the sandbox's paid story is test_pay_sandbox_and_config.py's")
def test_the_sandbox_sends_a_picture_from_a_file_and_the_voice_sample(
    chromium, bot_factory, tmp_path
):
    bot = bot_factory(server={"sandbox": True})
    page = chromium.new_context(**PHONE).new_page()
    page.goto(f"{bot.url}/dev")
    for text in ("1", "送", "1"):
        send(page, text)
    page.click("#events summary")
    picture = tmp_path / "photo.jpg"
    picture.write_bytes((SAMPLES / "photo_with_gps.jpg").read_bytes())
    page.set_input_files("#picture", str(picture))
    page.wait_for_selector("text=收到你的图片")
    page.click("#voice")
    page.wait_for_selector("text=语音祝福：已收到")
    shot(page, "personal-sandbox-picture-and-voice")
    page.fill("#text", "确认")
    page.press("#text", "Enter")
    page.wait_for_selector(".card-action")
    bot.drain()
    assert {(r.kind, r.status) for r in GreetingMedia.select()} == {
        ("picture", "ready"),
        ("voice", "ready"),
    }
    token = page.locator(".news").last.get_attribute("href").rsplit("%2F", 1)[1]
    friend = chromium.new_context(**PHONE).new_page()
    friend.goto(f"{bot.url}/dev/as?openid=dev-friend-1&next=/claim/{token}")
    assert (
        friend.locator(".greeting-pic").count() == 1 and friend.locator(".voice-play").count() == 1
    )
    shot(friend, "personal-sandbox-claim")


def test_a_themed_share_wears_its_frame_and_colours(chromium, bot_factory):
    frame = {"id": "festive", "name": "春节红", "background": "#fff1f0", "accent": "#c81e28",
             "frame": "/static/themes/festive.png"}  # fmt: skip
    bot = bot_factory(themes=[frame])
    monday_morning(bot)
    for text in ("2", "送", "1", "中秋快乐，月圆人圆！", "1"):
        say(bot, "o_giver", text)
    token = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    page = as_user(chromium, bot, "o_friend")
    page.goto(f"{bot.url}/claim/{token}")
    assert page.locator("body.theme-festive").count() == 1
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 241, 240)"
    assert page.locator(".gift-pic").evaluate("i => i.naturalWidth") == 600
    shot(page, "personal-themed-claim")
