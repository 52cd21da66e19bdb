"""[shares] swap: a recipient takes another gift instead, before ordering, in chat (换) and on
the page (/claim/<token>/swap), over the real server. The stock moves in the order's
transaction; the order and the export name both gifts; the giver's page says 好友换成了 …;
a more expensive gift is never offered; a surprise's list never names the wrapped gift; a
draw's winner may swap; in wechatpay mode a cheaper gift refunds the difference, once."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import subprocess
import sys

import pytest
from conftest import example_config, merge
from fakes.wechatpay import FakeWeChatPay
from helpers import (
    ANSWERS,
    BOTH_DATABASES,
    browser,
    card_of,
    claim,
    confirm_card,
    fill,
    monday_morning,
    say,
    share_in_chat,
)
from paying import balance_holds, live_payer, pay_overrides, unix

from bot.config import ConfigError, parse
from bot.gifting import fulfilment
from storage.models import Gift, Order, Refund, Share

UP_TO = {"shares": {"swap": "up_to_price"}}
TEA, MOONCAKE, SCARF, COFFEE = "tea-longjing", "mooncake", "scarf", "coffee"


def committed(gift_id: str) -> int:
    return Gift.get_by_id(gift_id).committed


def swap_list(reply: str) -> list[str]:
    """The gifts a 换 reply offers, by number: their names."""
    return re.findall(r"^\d+\. (\S+)（", reply, flags=re.M)


@BOTH_DATABASES
def test_a_recipient_swaps_in_chat_and_the_order_names_both_gifts(bot_factory):
    bot = bot_factory(**UP_TO)
    monday_morning(bot)
    token = share_in_chat(bot)  # 明前龙井礼盒, ¥168
    intro = say(bot, "o_friend", f"领取 {token}")
    assert "回复「换」" in intro
    offered = say(bot, "o_friend", "换")
    names = swap_list(offered)
    assert "流心奶黄月饼" in names and "精品咖啡豆" in names
    assert "明前龙井礼盒" not in names and "羊绒围巾" not in names  # never dearer, never itself
    assert "¥100–200" in offered and "¥128" not in offered  # a band, not the price
    assert "0. 不换" in offered
    assert "姓名" in say(bot, "o_friend", str(names.index("流心奶黄月饼") + 1))
    for text in ANSWERS.values():
        summary = say(bot, "o_friend", text)
    assert "1. 礼物：流心奶黄月饼（换的）" in summary
    done = say(bot, "o_friend", "确认")
    assert "礼物：流心奶黄月饼（你换的）" in done

    order = Order.get()
    assert (order.gift_id, order.swapped_from) == (MOONCAKE, TEA)
    assert (committed(TEA), committed(MOONCAKE)) == (0, 1)  # the unit moved with the swap
    assert Share.get().claimed == 1
    bot.drain()
    note = next(m for m in bot.fake_wechat.messages if m["touser"] == "o_giver")
    assert "好友换成了「流心奶黄月饼」" in json.dumps(note, ensure_ascii=False)
    sms = bot.sms.received[-1]["text"]
    assert "流心奶黄月饼" in sms and "明前龙井" not in sms


def test_a_swap_can_be_undone_and_a_variant_is_asked_for_the_new_gift(bot_factory):
    bot = bot_factory(**UP_TO)
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token)
    offered = say(bot, "o_friend", "换")
    coffee = swap_list(offered).index("精品咖啡豆") + 1
    assert "款式" in say(bot, "o_friend", str(coffee))  # the coffee's variants
    summary = say(bot, "o_friend", "2")  # 手冲研磨, then back to the summary
    assert "精品咖啡豆（换的）" in summary and "手冲研磨" in summary
    say(bot, "o_friend", "换")
    summary = say(bot, "o_friend", "0")
    assert "明前龙井礼盒（原来的礼物）" in summary and "手冲研磨" not in summary
    say(bot, "o_friend", "确认")
    order = Order.get()
    assert (order.gift_id, order.swapped_from, order.variant) == (TEA, "", "")
    assert (committed(TEA), committed(COFFEE)) == (1, 0)


@BOTH_DATABASES
def test_a_recipient_swaps_on_the_page_and_the_giver_sees_it(bot_factory):
    bot = bot_factory(**UP_TO)
    monday_morning(bot)
    token = share_in_chat(bot)
    friend = browser(bot, "o_friend")
    form = friend.get(f"{bot.url}/claim/{token}/form", timeout=10)
    assert f"/claim/{token}/swap" in form.text and "换一个礼物" in form.text
    page = friend.get(f"{bot.url}/claim/{token}/swap", timeout=10)
    assert page.status_code == 200
    assert "流心奶黄月饼" in page.text and "羊绒围巾" not in page.text
    assert "¥128" not in page.text and "¥168" not in page.text  # bands, never a price
    form = friend.get(f"{bot.url}/claim/{token}/form?swap={MOONCAKE}", timeout=10)
    assert "你换成了" in form.text and f'name="swap" value="{MOONCAKE}"' in form.text
    done = claim(bot, friend, token, swap=MOONCAKE)
    assert done.status_code == 200 and "流心奶黄月饼" in done.text
    order = Order.get()
    assert (order.gift_id, order.swapped_from, order.channel) == (MOONCAKE, TEA, "web")
    assert (committed(TEA), committed(MOONCAKE)) == (0, 1)

    status = browser(bot, "o_giver").get(f"{bot.url}/claim/{token}", timeout=10)
    assert "好友换成了「流心奶黄月饼」" in status.text


def test_a_dearer_gift_is_refused_even_when_posted_and_nothing_is_ordered(bot_factory):
    bot = bot_factory(**UP_TO)
    monday_morning(bot)
    token = share_in_chat(bot)
    friend = browser(bot, "o_friend")
    assert friend.get(f"{bot.url}/claim/{token}/form?swap={SCARF}", timeout=10).status_code == 409
    answer = claim(bot, friend, token, swap=SCARF)
    assert answer.status_code == 400 and "换不成" in answer.text
    assert Order.select().count() == 0
    assert (committed(TEA), committed(SCARF)) == (1, 0)


def test_same_price_offers_only_gifts_of_the_very_price(bot_factory):
    gifts = example_config()["gifts"]
    fruit = next(g for g in gifts if g["id"] == "fruit")
    fruit["price"] = 16800  # as dear as the tea
    bot = bot_factory(shares={"swap": "same_price"}, gifts=gifts)
    monday_morning(bot)
    token = share_in_chat(bot)
    say(bot, "o_friend", f"领取 {token}")
    assert swap_list(say(bot, "o_friend", "换")) == ["当季水果篮"]
    page = browser(bot, "o_friend").get(f"{bot.url}/claim/{token}/swap", timeout=10)
    assert "当季水果篮" in page.text and "流心奶黄月饼" not in page.text
    answer = claim(bot, browser(bot, "o_other"), token, swap=MOONCAKE)
    assert answer.status_code == 400 and Order.select().count() == 0


def test_swap_off_offers_nothing_and_换_is_an_answer_like_any(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    intro = say(bot, "o_friend", f"领取 {token}")
    assert "换" not in intro
    assert "手机" in say(bot, "o_friend", "换")  # no move here: an answer (a name) like any
    friend = browser(bot, "o_other")
    assert friend.get(f"{bot.url}/claim/{token}/swap", timeout=10).status_code == 409
    assert "换一个礼物" not in friend.get(f"{bot.url}/claim/{token}/form", timeout=10).text
    assert claim(bot, friend, token, swap=MOONCAKE).status_code == 400
    assert Order.select().count() == 0


def test_a_surprises_swap_list_never_names_the_wrapped_gift(bot_factory):
    bot = bot_factory(**UP_TO)
    monday_morning(bot)
    for text in ("1", "惊喜", "1", "生日快乐！"):
        say(bot, "o_giver", text)
    token = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    say(bot, "o_friend", f"领取 {token}")
    offered = say(bot, "o_friend", "换")
    assert "明前龙井" not in offered and "流心奶黄月饼" in offered
    page = browser(bot, "o_friend").get(f"{bot.url}/claim/{token}/swap", timeout=10)
    assert "明前龙井" not in page.text and "这份惊喜" in page.text
    say(bot, "o_friend", "0")
    for text in ANSWERS.values():
        summary = say(bot, "o_friend", text)
    assert "明前龙井" not in summary and "惊喜礼物（原来的礼物）" in summary


def test_a_draws_winner_may_swap(bot_factory):
    bot = bot_factory(**UP_TO)
    monday_morning(bot)
    for text in ("1", "抽奖", "1", "新年好运！", "跳过"):
        say(bot, "o_giver", text)
    token = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    say(bot, "o_winner", f"领取 {token}")
    share = Share.get()
    bot.clock.offset += share.draw_at - bot.clock() + dt.timedelta(minutes=1)
    bot.run(bot.services.sweep_once())
    friend = browser(bot, "o_winner")
    assert friend.get(f"{bot.url}/claim/{token}/swap", timeout=10).status_code == 200
    assert claim(bot, friend, token, swap=MOONCAKE).status_code == 200
    order = Order.get()
    assert (order.gift_id, order.swapped_from) == (MOONCAKE, TEA)
    assert (committed(TEA), committed(MOONCAKE)) == (0, 1)


def test_a_gift_gone_before_the_order_is_said_and_nothing_moves(bot_factory):
    bot = bot_factory(**UP_TO)
    monday_morning(bot)
    token = share_in_chat(bot)
    fill(bot, "o_friend", token)
    offered = say(bot, "o_friend", "换")
    say(bot, "o_friend", str(swap_list(offered).index("流心奶黄月饼") + 1))
    Gift.update(stock=Gift.committed).where(Gift.id == MOONCAKE).execute()  # all taken since
    answer = say(bot, "o_friend", "确认")
    assert "刚刚被换完了" in answer
    assert Order.select().count() == 0
    assert (committed(TEA), committed(MOONCAKE), Share.get().claimed) == (1, 0, 0)
    say(bot, "o_friend", "换")
    assert "领取成功" in say(bot, "o_friend", "0", "确认")


def test_the_export_carries_swapped_from(bot_factory):
    bot = bot_factory(**UP_TO)
    monday_morning(bot)
    token = share_in_chat(bot)
    claim(bot, browser(bot, "o_friend"), token, swap=MOONCAKE)
    out = subprocess.run(
        [sys.executable, "-m", "bot", "orders", "export", "--format", "json", "--config",
         bot.tmp_config()],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    (row,) = json.loads(out.stdout)
    assert (row["gift_id"], row["swapped_from"]) == (MOONCAKE, TEA)


# -- paid: the difference goes back to the giver, once ------------------------------------


@contextlib.contextmanager
def paid_swapping_bot(bot_factory, pay_keys, tmp_path):
    """A bot in wechatpay mode, against its own stand-in, whose recipients may swap down."""
    holder: dict = {}
    with FakeWeChatPay(
        pay_keys, clock=lambda: unix(holder["bot"]), retry_scale=1e-4, answer_timeout=2
    ) as pay:
        bot = bot_factory(**merge(pay_overrides(tmp_path, pay_keys, pay), UP_TO))
        holder["bot"] = bot
        bot.wx.payer = live_payer(bot, pay)  # 确认, then paying as a giver does
        yield bot, pay


@BOTH_DATABASES
def test_a_paid_unit_swapped_down_refunds_the_difference_once(bot_factory, pay_keys, tmp_path):
    with paid_swapping_bot(bot_factory, pay_keys, tmp_path) as (bot, pay):
        monday_morning(bot)
        for text in ("1", "送", "2", "跳过"):
            say(bot, "o_giver", text)
        token = card_of(bot.wx, "o_giver", bot.wx.text("o_giver", "确认"))["Url"].rsplit("/")[-1]
        friend = browser(bot, "o_friend")
        assert claim(bot, friend, token, swap=MOONCAKE).status_code == 200
        claim(bot, friend, token, swap=MOONCAKE)  # a double submit: the same order
        order = Order.get()
        (swapped,) = Refund.select().where(Refund.reason == "swapped")
        assert (swapped.cause, swapped.amount) == (f"swapped:{order.id}", 16800 - 12800)
        bot.drain()
        assert swapped.out_refund_no in pay.standin.refunds  # asked of WeChat Pay, once
        balance_holds()

        # the order cancelled: what is left of the unit goes back, never more than was paid
        bot.run(bot.services.db.write(fulfilment.move, bot.services.notices, order.order_no,
                                      "cancelled", bot.clock()))  # fmt: skip
        cancelled = Refund.get(Refund.reason == "cancelled")
        assert cancelled.amount == 12800
        assert sum(r.amount for r in Refund.select().where(Refund.share == order.share)) == 16800
        balance_holds()


def test_a_paid_swap_to_the_same_price_refunds_nothing(bot_factory, pay_keys, tmp_path):
    with paid_swapping_bot(bot_factory, pay_keys, tmp_path) as (bot, pay):
        monday_morning(bot)
        for text in ("2", "送", "1", "跳过"):  # the mooncake, ¥128
            say(bot, "o_giver", text)
        token = card_of(bot.wx, "o_giver", bot.wx.text("o_giver", "确认"))["Url"].rsplit("/")[-1]
        Gift.update(price=12800).where(Gift.id == "fruit").execute()
        assert claim(bot, browser(bot, "o_friend"), token, swap="fruit").status_code == 200
        assert Refund.select().where(Refund.reason == "swapped").count() == 0
        balance_holds()


def test_a_swap_mode_the_bot_does_not_know_stops_it_naming_the_key():
    with pytest.raises(ConfigError) as refused:
        parse(merge(example_config(), {"shares": {"swap": "any_price"}}))
    assert refused.value.key == "shares.swap" and "up_to_price" in refused.value.reason


pytestmark = pytest.mark.timeout(120)
