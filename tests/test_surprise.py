"""Surprise (惊喜): nothing the recipient sees names the gift until their order is placed;
the confirmation (page, chat, SMS) reveals it, and the giver always sees it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from helpers import (
    BOTH_DATABASES,
    DESKTOP_UA,
    FORM,
    browser,
    claim,
    confirm_card,
    first_slot,
    monday_morning,
    say,
    xsrf,
)

from storage.models import Order, Share

TEA = 1  # the catalogue's first gift: 明前龙井礼盒, no variants
FLOWERS = 3  # 鲜花一束, variants 玫瑰 / 向日葵 / 郁金香


@pytest.fixture(autouse=True)
def monday(bot) -> dt.date:
    return monday_morning(bot)


def secrets_of(bot, number: int) -> list[str]:
    """What would give the gift away: its name, its picture's URL, its description, the
    variants."""
    gift = bot.config.gifts[number - 1]
    return [gift.name, gift.image, gift.description, gift.description[:8], *gift.variants]


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s and s in text]


def surprise(bot, number=TEA, quantity="2", blessing="生日快乐！", giver="o_giver", *extra):
    """The giver's 惊喜 dialogue; every reply before 确认, the card, and the claim token."""
    replies = [bot.wx.text(giver, text) for text in (str(number), "惊喜", quantity, *extra)]
    replies.append(bot.wx.text(giver, blessing))
    card = confirm_card(bot.wx, giver)
    return replies, card, card["Url"].rsplit("/", 1)[1]


@BOTH_DATABASES
def test_a_surprise_card_and_page_name_nothing_of_the_gift_before_the_order(bot):
    hidden = secrets_of(bot, TEA)
    replies, card, token = surprise(bot)
    assert "明前龙井礼盒" in replies[1]["Content"], "the giver sees what they give"
    assert "惊喜" in replies[-1]["Content"] and "明前龙井礼盒" in replies[-1]["Content"]
    shown = " ".join([card["Title"], card["Description"], card["PicUrl"]])
    assert leaks(shown, hidden) == [] and "惊喜" in card["Title"]
    assert card["PicUrl"].endswith("/static/surprise/box.png")
    assert Share.get().kind == "surprise"

    friend = browser(bot, "o_friend")
    page = friend.get(f"{bot.url}/claim/{token}", timeout=10)
    assert page.status_code == 200 and leaks(page.text, hidden) == []
    title = re.search(r"<title>(.*?)</title>", page.text).group(1)
    og = dict(re.findall(r'<meta property="og:(\w+)" content="([^"]*)"', page.text))
    assert "惊喜礼物" in title and set(og) >= {"title", "description", "image"}
    assert leaks(title + " ".join(og.values()), hidden) == []
    assert "生日快乐！" in page.text and "好友送你一份惊喜" in page.text
    form = friend.get(f"{bot.url}/claim/{token}/form", timeout=10)
    assert form.status_code == 200 and leaks(form.text, hidden) == []
    outside = bot.session().get(f"{bot.url}/claim/{token}", headers={"User-Agent": DESKTOP_UA})
    assert "用手机号领取" in outside.text and leaks(outside.text, hidden) == []

    done = claim(bot, friend, token)
    assert done.status_code == 200 and "明前龙井礼盒" in done.text, "the confirmation reveals it"
    again = friend.get(f"{bot.url}/claim/{token}", timeout=10)
    assert "明前龙井礼盒" in again.text
    bot.drain()
    assert "明前龙井礼盒" in bot.sms.received[0]["text"], "the SMS names what is coming"
    giver_view = browser(bot, "o_giver").get(f"{bot.url}/claim/{token}", timeout=10)
    assert "明前龙井礼盒" in giver_view.text, "the giver's own page shows the gift"


def test_a_surprise_claimed_in_chat_is_revealed_only_by_the_confirmation(bot):
    hidden = secrets_of(bot, TEA)
    _, _, token = surprise(bot)
    answers = [f"领取 {token}", "张小红", "13800138000", "广东省深圳市南山区科技园南区 8 栋 1201"]
    before = [say(bot, "o_friend", text) for text in [*answers, "1"]]
    assert all(leaks(reply, hidden) == [] for reply in before), before
    assert "下单后揭晓" in before[0]
    done = say(bot, "o_friend", "确认")
    assert "领取成功" in done and "明前龙井礼盒" in done
    assert "明前龙井礼盒" in say(bot, "o_friend", "我收到的")


def test_a_surprise_gifts_variant_is_chosen_by_the_giver_and_never_shown_before(bot):
    hidden = secrets_of(bot, FLOWERS)
    replies, card, token = surprise(bot, FLOWERS, "1", "跳过", "o_giver", "2")
    assert "惊喜由你来选款式" in replies[2]["Content"] and "玫瑰" in replies[2]["Content"]
    assert Share.get().variant == "向日葵"
    friend = browser(bot, "o_friend")
    form = friend.get(f"{bot.url}/claim/{token}/form", timeout=10)
    assert leaks(form.text, hidden) == [] and 'name="variant"' not in form.text
    data = FORM | {"delivery": first_slot(bot), "_xsrf": xsrf(form)}
    done = friend.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10)
    assert done.status_code == 200 and "鲜花一束" in done.text
    bot.drain()
    assert "鲜花一束" in bot.sms.received[0]["text"]
    assert Order.get().variant == "向日葵"
