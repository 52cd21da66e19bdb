"""Draws (抽奖): the dialogue, joining once (page or chat, never the giver), the draw at its
time (once, fairly, among those who may win), winners' orders, and stock coming back."""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter

import pytest
from drawing import draw_now
from helpers import (
    BOTH_DATABASES,
    FORM,
    PAID,
    browser,
    chat_to,
    claim,
    confirm_card,
    first_slot,
    monday_morning,
    say,
    share_in_chat,
    xsrf,
)
from paying import refunds_made

from bot.forms.base import Invalid
from bot.gifting import draws, shares
from bot.render import money
from storage.models import DrawEntry, Gift, Order, Outbox, Share

STOCK = 40  # 明前龙井礼盒's stock in config.example.toml


@pytest.fixture(autouse=True)
def monday(bot) -> dt.date:
    return monday_morning(bot)


def draw_in_chat(bot, winners="2", blessing="新年好运！", when="跳过", giver="o_giver") -> str:
    """The giver's 抽奖 dialogue; returns the claim token from the card."""
    for text in ("1", "抽奖", winners, blessing, when):
        bot.wx.text(giver, text)
    card = confirm_card(bot.wx, giver)
    assert "抽奖" in card["Title"]
    return card["Url"].rsplit("/", 1)[1]


def join_on_page(bot, openid: str, token: str):
    """Press 参与抽奖; a page without the button (the giver's, a drawn draw) posts anyway."""
    phone = browser(bot, openid)
    page = phone.get(f"{bot.url}/claim/{token}", timeout=10)
    if "_xsrf" in page.text:
        token_value = xsrf(page)
    else:
        token_value = "0f" * 16  # a token of its own making, as a script would send
        phone.cookies.set("_xsrf", token_value)
    return phone.post(f"{bot.url}/claim/{token}/join", data={"_xsrf": token_value}, timeout=10)


def test_the_draw_dialogue_asks_winners_blessing_and_when(bot):
    assert "抽几位中奖" in say(bot, "o_giver", "1", "抽奖")
    assert "祝福语" in say(bot, "o_giver", "3")
    assert "什么时候开奖" in say(bot, "o_giver", "跳过") and "24 小时后" in say(
        bot, "o_giver", "返回", "跳过"
    )
    assert "没看懂" in say(bot, "o_giver", "改天吧")
    assert "开奖时间要在" in say(bot, "o_giver", "30天后")
    summary = say(bot, "o_giver", "2小时后")
    assert "请确认抽奖" in summary and "中奖人数：3" in summary and "开奖时间" in summary
    card = confirm_card(bot.wx, "o_giver")
    share = Share.get()
    assert share.kind == "draw" and share.quantity == 3 and card["Url"].endswith(share.token)
    assert abs(share.draw_at - (bot.clock() + dt.timedelta(hours=2))) < dt.timedelta(minutes=1)
    assert share.expires_at == share.draw_at + dt.timedelta(hours=72)
    assert Gift.get_by_id("tea-longjing").committed == 3, "the winners' units are held"


def test_the_default_draw_time_is_draw_hours_from_config(bot_factory):
    bot = bot_factory(shares={"draw_hours": 0.5})
    monday_morning(bot)
    draw_in_chat(bot)
    share = Share.get()
    assert abs(share.draw_at - (bot.clock() + dt.timedelta(minutes=30))) < dt.timedelta(minutes=1)


@BOTH_DATABASES
def test_anyone_but_the_giver_joins_once_on_the_page_or_in_chat(bot):
    token = draw_in_chat(bot)
    giver_page = browser(bot, "o_giver").get(f"{bot.url}/claim/{token}", timeout=10)
    assert "参与抽奖</button>" not in giver_page.text and "你送出的礼物" in giver_page.text
    assert "抽奖进行中" in giver_page.text, "the giver's own link is the draw's status page"
    assert join_on_page(bot, "o_giver", token).status_code == 409
    assert "不能自己领取" in say(bot, "o_giver", f"领取 {token}")

    page = browser(bot, "o_web").get(f"{bot.url}/claim/{token}", timeout=10)
    assert "参与抽奖</button>" in page.text and "抽奖规则" in page.text and "密码学" in page.text
    joined = join_on_page(bot, "o_web", token)
    assert joined.status_code == 200 and "你已参与抽奖" in joined.text
    assert join_on_page(bot, "o_web", token).status_code == 200
    assert "已参与抽奖" in say(bot, "o_chat", f"领取 {token}")
    assert "已经参与过" in say(bot, "o_chat", f"领取 {token}")
    assert DrawEntry.select().count() == 2
    assert {(e.openid, e.via) for e in DrawEntry.select()} == {("o_web", "web"), ("o_chat", "chat")}
    shown = browser(bot, "o_third").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert "已有 <strong>2</strong> 人参与" in shown
    assert "o_web" not in shown and "o_chat" not in shown


@BOTH_DATABASES
def test_the_draw_picks_once_among_those_who_may_win_and_tells_each_of_them(bot):
    token = draw_in_chat(bot, winners="2")
    for openid in ("o_a", "o_b", "o_gone"):
        say(bot, openid, f"领取 {token}")
    bot.wx.unsubscribe("o_gone")  # joined in chat, then stopped following: cannot win
    draw_now(bot)

    share = Share.get()
    assert share.drawn_at is not None and share.quantity == 2
    assert {e.openid for e in DrawEntry.select().where(DrawEntry.won)} == {"o_a", "o_b"}
    assert Outbox.select().where(Outbox.key.startswith("draw:")).count() == 4, "once each"
    assert "恭喜" in chat_to(bot, "o_a")[0] and "恭喜" in chat_to(bot, "o_b")[0]
    # o_gone unfollowed: WeChat takes no customer-service message to them (43004), so the news
    # waits on their page (below), and the notice says why it went nowhere.
    assert chat_to(bot, "o_gone") == []
    gone = Outbox.get(Outbox.key == f"draw:lost:{share.id}:o_gone")
    assert gone.status == "skipped" and "no longer follows" in gone.last_error
    assert "3 人参与，抽中 2 位" in chat_to(bot, "o_giver")[0]

    won = browser(bot, "o_a").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert "恭喜你抽中了" in won and f"/claim/{token}/form" in won
    lost = browser(bot, "o_gone").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert "没有抽中" in lost and f"/claim/{token}/form" not in lost
    late = browser(bot, "o_late").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert "已经开过奖" in late and "参与抽奖</button>" not in late

    assert claim(bot, browser(bot, "o_a"), token).status_code == 200
    loser = browser(bot, "o_gone")
    loser.get(f"{bot.url}/claim/{token}/form", timeout=10)  # through WeChat's login
    loser.cookies.set("_xsrf", "0f" * 16)  # the form page has no form for them: post anyway
    data = FORM | {"delivery": first_slot(bot), "_xsrf": "0f" * 16}
    refused = loser.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10)
    assert refused.status_code == 409 and "没有抽中" in refused.text
    assert Order.select().count() == 1
    assert "没有抽中" in say(bot, "o_gone", f"领取 {token}")
    giver_page = browser(bot, "o_giver").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert "1 / 2 位中奖者已领取" in giver_page and "138" not in giver_page
    mine = say(bot, "o_giver", "我送出的")
    assert "3 人参与，已开奖：中奖 2 位，1 位已领取" in mine and "138" not in mine


def test_joins_after_the_draw_are_refused(bot):
    token = draw_in_chat(bot)
    say(bot, "o_a", f"领取 {token}")
    draw_now(bot)
    assert join_on_page(bot, "o_late", token).status_code == 409
    assert "开过奖" in say(bot, "o_late2", f"领取 {token}")
    assert DrawEntry.select().count() == 1


def test_a_plain_gift_or_an_unknown_link_is_not_a_draw_to_join(bot):
    plain = share_in_chat(bot)
    for token in (plain, "x" * 22):
        with pytest.raises(Invalid) as refused:
            bot.run(bot.services.db.write(draws.join, token, "o_a", "web", bot.clock()))
        assert refused.value.code == "share_unknown"
    assert not DrawEntry.select().exists()


def test_joining_one_draw_is_not_joining_another(bot):
    first = draw_in_chat(bot)
    second = draw_in_chat(bot, giver="o_other")
    assert join_on_page(bot, "o_a", first).status_code == 200
    shares_by_token = {s.token: s for s in Share.select()}
    now = bot.clock()
    assert draws.seen_by(shares_by_token[first], "o_a", now).joined
    view = draws.seen_by(shares_by_token[second], "o_a", now)
    assert (view.joined, view.can_join, view.entrants) == (False, True, 0)


def test_a_draw_is_drawn_at_its_very_time(bot):
    draw_in_chat(bot)
    share = Share.get()
    services = bot.services
    early = share.draw_at - dt.timedelta(microseconds=1)
    assert bot.run(services.db.write(draws.draw_due, services.notices, early)) == 0
    assert bot.run(services.db.write(draws.draw_due, services.notices, share.draw_at)) == 1


def test_joins_past_the_draw_time_are_refused_even_before_the_sweep(bot):
    token = draw_in_chat(bot)
    bot.clock.offset += dt.timedelta(hours=25)
    assert "开过奖" in say(bot, "o_late", f"领取 {token}")
    assert DrawEntry.select().count() == 0


@BOTH_DATABASES
def test_units_nobody_won_return_at_the_draw_and_unclaimed_wins_at_the_expiry(bot):
    token = draw_in_chat(bot, winners="3")
    say(bot, "o_a", f"领取 {token}")
    assert Gift.get_by_id("tea-longjing").committed == 3
    draw_now(bot)
    assert Gift.get_by_id("tea-longjing").committed == 1, "two units nobody could win"
    # Money is spoken of only when paid: then the two units' price is on its way back.
    told = (
        f"没抽出的 2 份的 {money(2 * Share.get().unit_price)} 会原路退款给你"
        if PAID
        else "没抽出的 2 份已退回库存"
    )
    assert told in chat_to(bot, "o_giver")[0]
    assert refunds_made(bot) == ([("unwon", 2)] if PAID else []), "paid for: refunded"
    bot.clock.offset += dt.timedelta(hours=73)
    bot.run(bot.services.sweep_once())
    assert Gift.get_by_id("tea-longjing").committed == 0, "the winner never claimed"
    assert refunds_made(bot) == ([("unwon", 2), ("expired", 1)] if PAID else [])
    assert "已过期" in browser(bot, "o_a").get(f"{bot.url}/claim/{token}", timeout=10).text


def test_a_draw_nobody_joined_returns_every_unit(bot):
    draw_in_chat(bot, winners="2")
    draw_now(bot)
    assert Share.get().quantity == 0 and Gift.get_by_id("tea-longjing").committed == 0
    assert "0 人参与，抽中 0 位" in chat_to(bot, "o_giver")[0]
    assert shares.status(Share.get(), bot.clock()) == "expired", "over, with nothing claimed"
    assert "抽奖，0 人参与，已开奖：中奖 0 位" in say(bot, "o_giver", "我送出的")
    assert [row["status"] for row in shares.listing(bot.clock(), "expired")] == ["expired"]
    assert refunds_made(bot) == ([("unwon", 2)] if PAID else [])


def test_a_withdrawn_draw_is_never_drawn(bot):
    token = draw_in_chat(bot)
    say(bot, "o_a", f"领取 {token}")
    say(bot, "o_giver", "我送出的")
    assert "已撤回" in say(bot, "o_giver", "撤回 1")
    page = join_on_page(bot, "o_b", token)
    assert page.status_code == 409 and "撤回" in page.text
    assert "撤回" in say(bot, "o_c", f"领取 {token}")
    assert [e.openid for e in DrawEntry.select()] == ["o_a"], "nobody joins a withdrawn draw"
    draw_now(bot)
    assert Share.get().drawn_at is None and Gift.get_by_id("tea-longjing").committed == 0
    assert refunds_made(bot) == ([("revoked", 2)] if PAID else [])


def test_the_choice_is_uniform_and_cryptographic():
    """Every entrant is picked about as often (chi-square over many draws, 9 degrees of
    freedom: 27.9 is the 0.1% tail), and the randomness is the operating system's."""
    assert isinstance(draws._random, secrets.SystemRandom)
    entrants, winners, rounds = list(range(10)), 3, 20_000
    counts = Counter(w for _ in range(rounds) for w in draws.pick_winners(entrants, winners))
    expected = rounds * winners / len(entrants)
    chi2 = sum((counts[e] - expected) ** 2 / expected for e in entrants)
    assert chi2 < 27.9, counts
    for _ in range(200):
        picked = draws.pick_winners(entrants, winners)
        assert len(set(picked)) == winners, "nobody wins twice"
    assert sorted(draws.pick_winners([1, 2], 5)) == [1, 2], "fewer entrants than units: all"
