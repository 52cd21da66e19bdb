"""Themed cards ([[themes]]), over the real server: the share and draw dialogues ask for one
(`跳过` keeps the default), the card in chat carries the gift's picture composed in the
theme's frame on the server (drawn once, then kept), and the share's page wears the theme's
colours and picture; a surprise's card frames its box, never the gift."""

from __future__ import annotations

import io
import time

import pytest
import requests
from conftest import example_config, merge
from helpers import browser, confirm_card, monday_morning, say
from PIL import Image

from bot.config import ConfigError, parse
from storage.models import Share

THEMES = {
    "themes": [
        {"id": "festive", "name": "春节红", "background": "#fff1f0", "accent": "#c81e28",
         "frame": "/static/themes/festive.png"},
        {"id": "birthday", "name": "生日粉", "background": "#fff5f8", "accent": "#ff6f9c",
         "frame": "/static/themes/birthday.png"},
        {"id": "plain", "name": "素雅", "background": "#f7f7f7", "accent": "#333333"},
    ]
}  # fmt: skip


def test_the_share_dialogue_asks_for_a_theme_and_the_card_wears_it(bot_factory):
    bot = bot_factory(**THEMES)
    monday_morning(bot)
    for text in ("1", "送", "1"):
        say(bot, "o_giver", text)
    asked = say(bot, "o_giver", "生日快乐！")
    assert "卡片样式" in asked and "1. 春节红" in asked and "跳过" in asked
    assert "卡片样式：春节红" in say(bot, "o_giver", "1")
    card = confirm_card(bot.wx, "o_giver")
    assert Share.get().theme == "festive"
    picture = card["PicUrl"]
    assert picture == f"{bot.url}/cards/festive.png?pic=/static/gifts/tea.png"

    started = time.perf_counter()
    drawn = requests.get(picture, timeout=10)
    first = time.perf_counter() - started
    assert drawn.status_code == 200 and drawn.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(drawn.content))
    assert image.size == (600, 600)
    assert image.getpixel((5, 300))[:3] == (200, 30, 40)  # the festive frame's edge
    plain = requests.get(f"{bot.url}/static/gifts/tea.png", timeout=10).content
    assert drawn.content != plain
    started = time.perf_counter()
    again = requests.get(picture, timeout=10)
    assert again.content == drawn.content and time.perf_counter() - started < max(first, 0.05)

    token = card["Url"].rsplit("/", 1)[1]
    page = browser(bot, "o_friend").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert 'class="page theme-festive"' in page and "/themes.css" in page
    assert "/cards/festive.png?pic=/static/gifts/tea.png" in page
    css = requests.get(f"{bot.url}/themes.css", timeout=10)
    assert css.headers["Content-Type"].startswith("text/css")
    assert "body.theme-festive" in css.text and "#c81e28" in css.text


def test_跳过_keeps_the_default_look_and_a_theme_without_a_frame_keeps_the_picture(bot_factory):
    bot = bot_factory(**THEMES)
    monday_morning(bot)
    for text in ("1", "送", "1", "生日快乐！", "跳过"):
        reply = say(bot, "o_giver", text)
    assert "卡片样式：默认" in reply
    assert confirm_card(bot.wx, "o_giver")["PicUrl"].endswith("/static/gifts/tea.png")
    for text in ("1", "送", "1", "生日快乐！", "素雅"):
        say(bot, "o_other", text)
    card = confirm_card(bot.wx, "o_other")
    assert card["PicUrl"].endswith("/static/gifts/tea.png")  # no frame: the picture as it is
    assert Share.get(Share.giver == "o_other").theme == "plain"


def test_a_surprises_card_frames_its_box_and_a_draw_asks_too(bot_factory):
    bot = bot_factory(**THEMES)
    monday_morning(bot)
    for text in ("1", "惊喜", "1", "生日快乐！", "2"):
        say(bot, "o_giver", text)
    card = confirm_card(bot.wx, "o_giver")
    assert card["PicUrl"].endswith("/cards/birthday.png?pic=/static/surprise/box.png")
    for text in ("1", "抽奖", "1", "新年好运！", "跳过"):
        say(bot, "o_drawer", text)
    assert "1. 中奖人数" in say(bot, "o_drawer", "1")
    confirm_card(bot.wx, "o_drawer")
    assert Share.get(Share.giver == "o_drawer").theme == "festive"


def test_only_a_themes_own_frame_around_a_catalogue_picture_is_drawn(bot_factory):
    bot = bot_factory(**THEMES)
    for path in ("/cards/festive.png?pic=/etc/passwd", "/cards/festive.png?pic=/static/../bot.db",
                 "/cards/nosuch.png?pic=/static/gifts/tea.png",
                 "/cards/plain.png?pic=/static/gifts/tea.png",
                 "/cards/festive.png?pic=https://evil.example/x.png"):  # fmt: skip
        assert requests.get(f"{bot.url}{path}", timeout=10).status_code == 404, path


def test_a_theme_the_bot_cannot_use_stops_it_naming_the_key():
    for theme, key in (({"id": "a b", "name": "x"}, "themes[0].id"),
                       ({"id": "a", "name": "x", "accent": "red"}, "themes[0].accent"),
                       ({"id": "a", "name": "x", "frame": "/etc/x.png"}, "themes[0].frame")):  # fmt: skip
        with pytest.raises(ConfigError) as refused:
            parse(merge(example_config(), {"themes": [theme]}))
        assert refused.value.key == key
    with pytest.raises(ConfigError) as refused:
        parse(merge(example_config(), {"themes": [{"id": "a", "name": "x"}] * 2}))
    assert refused.value.key == "themes[1].id"
