"""Every promise reaches its person (issue 25): a draw's result goes to each entrant by the
channel they have — a one-time subscription they granted on the page (WeChat's confirm page
and `/subscribed`, played by the fake from the docs), an SMS to a verified mobile — and a page
promises only that channel; with none, the page says to come back and the notice is skipped
with the reasons. Over the real server, with the fakes of WeChat's API and the SMS webhook.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import make_raw_config
from drawing import draw_now
from fakes.wechat_api import SUBSCRIBE_TEMPLATE
from helpers import (
    BOTH_DATABASES,
    browser,
    claim,
    confirm_card,
    migrations_down_through,
    monday_morning,
    say,
    share_in_chat,
)
from mobile import ask_code, code_sent, desktop, enter, xsrf_of
from playhouse.migrations import Runner
from playhouse.schema_diff import diff_models

from bot.config import parse
from bot.gifting import promises
from bot.outgoing import subscriptions
from bot.outgoing.outbox import Worker
from storage import db as storage_db
from storage.db import write_transaction
from storage.models import ALL_MODELS, DrawEntry, Outbox, Share, SubscriptionGrant
from storage.models import db as database


@pytest.fixture
def subscribing(bot_factory):
    """A bot whose account has WeChat's one-time subscription template (the fake's)."""
    return bot_factory(wechat={"subscribe_template_id": SUBSCRIBE_TEMPLATE})


def a_draw(bot, winners="1") -> str:
    monday_morning(bot)
    for text in ("1", "抽奖", winners, "跳过", "跳过"):
        bot.wx.text("o_giver", text)
    return confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]


def join_in_wechat(bot, openid: str, token: str):
    """Open the draw in WeChat's browser and press 参与抽奖; the page after joining."""
    phone = browser(bot, openid)
    page = phone.get(f"{bot.url}/claim/{token}", timeout=10)
    data = {"_xsrf": re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)}
    return phone, phone.post(f"{bot.url}/claim/{token}/join", data=data, timeout=10)


def subscribe_link(page_html: str) -> str:
    found = re.search(r'<a class="btn btn-big subscribe" href="([^"]+)"', page_html)
    assert found, "the page offers no subscription"
    return found.group(1).replace("&amp;", "&")


def notice(key_start: str) -> Outbox:
    return Outbox.get(Outbox.key.startswith(key_start))


@BOTH_DATABASES
def test_a_page_only_winner_is_told_through_a_one_time_subscription(subscribing):
    bot = subscribing
    token = a_draw(bot)
    phone, joined = join_in_wechat(bot, "o_page", token)
    assert "你已参与抽奖" in joined.text
    link = subscribe_link(joined.text)
    parts = urlsplit(link)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{bot.fake_wechat.url}/mp/subscribemsg"
    )
    assert parts.fragment == "wechat_redirect"
    asked = parse_qs(parts.query)
    share = Share.get()
    assert list(asked) == ["action", "appid", "scene", "template_id", "redirect_url", "reserved"]
    assert asked["scene"] == [str(subscriptions.scene_of(share.id))]
    assert asked["redirect_url"] == [f"{bot.url}/subscribed"]
    assert re.fullmatch(r"[A-Za-z0-9]{1,128}", asked["reserved"][0])
    assert "公众号里告诉你" not in joined.text, "no promise of the chat to someone who never wrote"

    # WeChat's page asks; they confirm; back on the draw page, subscribed.
    back = phone.get(link.split("#")[0], timeout=10)
    assert back.url == f"{bot.url}/claim/{token}" and "已订阅" in back.text
    assert "微信通知我一次" not in back.text
    assert SubscriptionGrant.select().count() == 1

    draw_now(bot)
    (sent,) = bot.fake_wechat.subscribed
    assert sent["touser"] == "o_page" and sent["scene"] == str(subscriptions.scene_of(share.id))
    assert sent["title"] == "中奖" and "恭喜" in sent["data"]["content"]["value"]
    assert "在这里回复" not in sent["data"]["content"]["value"], "服务通知 takes no reply"
    assert sent["url"] == f"{bot.url}/claim/{token}" and sent["shown_in"] == "服务通知"
    won = notice(f"draw:won:{share.id}:o_page")
    assert (won.status, won.sent_by) == ("sent", "one-time subscription")
    assert SubscriptionGrant.get().used_by == f"outbox-{won.id}"


@BOTH_DATABASES
def test_a_mobile_only_winner_is_told_by_sms_and_a_loser_kindly(bot):
    token = a_draw(bot)
    for mobile in ("13912345678", "13912345679"):
        bot.clock.offset += dt.timedelta(minutes=2)  # one code a minute from this network
        session = desktop()
        assert ask_code(bot, session, token, mobile).status_code == 200
        page = enter(bot, session, token, code_sent(bot, "+86" + mobile))
        assert page.url.endswith(f"/claim/{token}")
        joined = session.post(
            f"{bot.url}/claim/{token}/join", data={"_xsrf": xsrf_of(session)}, timeout=10
        )
        assert "你已参与抽奖" in joined.text
        assert "开奖结果会发短信告诉你" in joined.text, "a verified mobile is promised its SMS"
        assert "微信通知我一次" not in joined.text, "no WeChat subscription outside WeChat"
    draw_now(bot)
    texts = {m["phone"]: m for m in bot.sms.received if m.get("template", "").startswith("draw_")}
    (winner,) = [e.openid.removeprefix("tel:") for e in DrawEntry.select().where(DrawEntry.won)]
    assert texts[winner]["template"] == "draw_won" and "恭喜你抽中" in texts[winner]["text"]
    assert texts[winner]["params"]["gift"] == "明前龙井礼盒" and texts[winner]["params"]["time"]
    (loser,) = set(texts) - {winner}
    assert texts[loser]["template"] == "draw_lost" and "没有抽中" in texts[loser]["text"]
    share = Share.get()
    won = notice(f"draw:won:{share.id}:tel:{winner}")
    assert won.status == "sent" and won.sent_by == f"sms: sms:notice:outbox-{won.id}"


@BOTH_DATABASES
def test_a_person_with_no_channel_was_never_promised_one(bot):
    """Subscriptions off, no template, no mobile: the page says to come back, and the draw's
    result is skipped with every reason, never retried."""
    token = a_draw(bot)
    _, joined = join_in_wechat(bot, "o_page", token)
    assert "开奖结果请回到这个页面查看" in joined.text
    for promised in ("公众号里告诉你", "短信", "微信通知我一次", "已订阅"):
        assert promised not in joined.text.split("抽奖规则")[0], promised
    draw_now(bot)
    share = Share.get()
    won = notice(f"draw:won:{share.id}:o_page")
    assert won.status == "skipped" and won.attempts == 1
    for reason in ("48-hour window", "one-time subscriptions are off", "no template message",
                   "no mobile known"):  # fmt: skip
        assert reason in won.last_error
    assert bot.fake_wechat.subscribed == [] and bot.fake_wechat.messages[-1]["touser"] != "o_page"


def confirmed(bot, token: str, openid: str = "o_page") -> tuple[object, str]:
    """Join in WeChat; the query WeChat's page would send back on a confirmation."""
    phone, joined = join_in_wechat(bot, openid, token)
    asked = parse_qs(urlsplit(subscribe_link(joined.text)).query)
    query = {"openid": openid, "template_id": asked["template_id"][0], "action": "confirm",
             "scene": asked["scene"][0], "reserved": asked["reserved"][0]}  # fmt: skip
    return phone, query


def subscribed_through_wechat(bot, token: str, openid: str = "o_page") -> None:
    """Join in WeChat, and confirm on WeChat's page (the fake's): a grant at both ends."""
    phone, joined = join_in_wechat(bot, openid, token)
    assert "已订阅" in phone.get(subscribe_link(joined.text).split("#")[0], timeout=10).text


def back(phone, bot, **query):
    return phone.get(f"{bot.url}/subscribed", params=query, timeout=10, allow_redirects=False)


@BOTH_DATABASES
def test_the_way_back_keeps_a_grant_once_and_only_for_whom_it_was_made(subscribing):
    bot = subscribing
    token = a_draw(bot)
    phone, query = confirmed(bot, token)
    forged = query["reserved"][:-1] + ("0" if query["reserved"][-1] != "0" else "1")
    refused = [
        back(phone, bot, **query | {"reserved": forged}),
        back(phone, bot, **query | {"openid": "o_someone_else"}),  # the link was o_page's
        back(phone, bot, **query | {"template_id": "another-template"}),
        back(phone, bot, **query | {"scene": "0"}),
        back(phone, bot, **query | {"action": "maybe"}),
        back(phone, bot, **query | {"reserved": "x" * 200}),
    ]
    assert [r.status_code for r in refused] == [400] * 6
    assert "这次订阅没有记下" in refused[0].text
    assert SubscriptionGrant.select().count() == 0

    cancel = {k: v for k, v in query.items() if k != "openid"} | {"action": "cancel"}
    cancelled = back(phone, bot, **cancel)
    assert (cancelled.status_code, cancelled.headers["Location"]) == (303, f"/claim/{token}")
    assert SubscriptionGrant.select().count() == 0

    for _ in range(2):  # WeChat's redirect, and the same again (a reload, a replay)
        kept = back(phone, bot, **query)
        assert (kept.status_code, kept.headers["Location"]) == (303, f"/claim/{token}")
    assert SubscriptionGrant.select().count() == 1
    assert "已订阅" in browser(bot, "o_page").get(f"{bot.url}/claim/{token}", timeout=10).text
    fresh = subscriptions.make_reserved(
        bot.config, "o_page", Share.get().id, subscriptions.Page.CLAIM, bot.clock()
    )  # another link, confirmed while the grant is unused: WeChat adds nothing, nor do we
    assert back(phone, bot, **query | {"reserved": fresh}).status_code == 303
    assert SubscriptionGrant.select().count() == 1


def test_a_link_made_half_an_hour_ago_is_refused(subscribing):
    bot = subscribing
    token = a_draw(bot)
    phone, query = confirmed(bot, token)
    bot.clock.offset += dt.timedelta(minutes=subscriptions.RESERVED_MINUTES, seconds=1)
    assert back(phone, bot, **query).status_code == 400
    assert SubscriptionGrant.select().count() == 0


@BOTH_DATABASES
def test_two_notices_racing_for_one_grant_send_one_subscription_message(subscribing):
    """Two outbox workers, two notices for the same person and share: the grant goes to one
    (a guarded UPDATE); the other finds no channel and says so."""
    bot = subscribing
    token = a_draw(bot)
    subscribed_through_wechat(bot, token)
    share = Share.get()
    notices = bot.services.notices
    share.gift = share.gift  # loaded for the texts

    def queue() -> None:
        notices.draw_outcome(share, "o_page", won=True)
        notices.visit_reminder(share, "o_page", share.gift)

    bot.run(bot.services.db.write(queue))
    channels, db = bot.services.worker.channels, bot.services.db
    one, other = (Worker(channels, db, batch=1, clock=bot.clock) for _ in range(2))

    async def both() -> None:  # each worker leases one of the two rows, then both send
        await asyncio.gather(one.run_once(), other.run_once())

    bot.run(both())
    assert len(bot.fake_wechat.subscribed) == 1
    ours = Outbox.key.startswith("draw:won") | Outbox.key.startswith("remind:visit")
    rows = list(Outbox.select().where(ours))
    assert sorted(r.status for r in rows) == ["sent", "skipped"]
    (sent,) = [r for r in rows if r.status == "sent"]
    assert SubscriptionGrant.get().used_by == f"outbox-{sent.id}"


@BOTH_DATABASES
def test_two_workers_taking_one_grant_in_their_own_transactions_take_it_once(subscribing):
    bot = subscribing
    token = a_draw(bot)
    subscribed_through_wechat(bot, token)
    kept = SubscriptionGrant.get()
    start = threading.Barrier(4)
    taken = []

    def take(ref: str) -> None:
        start.wait()
        with write_transaction():
            taken.append((ref, subscriptions.take(kept, ref, bot.clock())))
        database.close()

    threads = [threading.Thread(target=take, args=(f"outbox-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [ref for ref, won in taken if won]
    assert len(taken) == 4 and len(winners) == 1
    assert SubscriptionGrant.get().used_by == winners[0]
    assert subscriptions.take(SubscriptionGrant.get(), winners[0], bot.clock()), "a retry: ours"


def test_wechat_refusing_the_subscription_goes_on_to_the_next_channel(subscribing):
    """Our books hold a grant WeChat does not (the person confirmed elsewhere, or WeChat lost
    it): 43101, and the notice goes on: to the mobile they ordered with, by SMS."""
    bot = subscribing
    token = a_draw(bot)
    share = Share.get()
    claim(bot, browser(bot, "o_page"), share_in_chat(bot))  # an order: a mobile we know
    _, joined = join_in_wechat(bot, "o_page", token)
    bot.run(bot.services.db.write(
        subscriptions.grant, "o_page", share.id, SUBSCRIBE_TEMPLATE,
        subscriptions.scene_of(share.id), "nonce-of-a-test", bot.clock(),
    ))  # fmt: skip
    draw_now(bot)
    won = notice(f"draw:won:{share.id}:o_page")
    assert won.status == "sent" and won.sent_by.startswith("sms: ")
    (texted,) = [m for m in bot.sms.received if m["template"] == "draw_won"]
    assert texted["phone"] == "+8613800138000"
    assert bot.fake_wechat.subscribed == []
    calls = [c for c in bot.fake_wechat.calls if c[0] == "/cgi-bin/message/template/subscribe"]
    assert len(calls) == 1, "WeChat was asked once, said 43101, and the SMS took over"


def test_joining_in_chat_promises_the_chat_only_while_its_window_lasts_to_the_draw(subscribing):
    bot = subscribing
    soon = a_draw(bot)  # drawn in 24 hours: their message now keeps the window open till then
    assert "开奖后在这里告诉你结果" in say(bot, "o_chat", f"领取 {soon}")
    for text in ("1", "抽奖", "1", "跳过", "3天后"):
        bot.wx.text("o_giver", text)
    later = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    joined = say(bot, "o_chat", f"领取 {later}")
    assert "开奖后在这里告诉你结果" not in joined
    link = re.search(r"(http\S+/mp/subscribemsg\?action=get_confirm\S+#wechat_redirect)", joined)
    assert link, joined
    reserved = parse_qs(urlsplit(link.group(1)).query)["reserved"][0]
    later_share = Share.get(Share.token == later)
    came = subscriptions.read_reserved(bot.config, reserved, "o_chat", bot.clock())
    assert came.share_id == later_share.id and came.page == subscriptions.Page.CLAIM


def test_without_a_way_to_reach_them_the_chat_says_how_to_look(bot):
    monday_morning(bot)
    for text in ("1", "抽奖", "1", "跳过", "3天后"):
        bot.wx.text("o_giver", text)
    token = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    joined = say(bot, "o_chat", f"领取 {token}")
    assert f"开奖后回复「领取 {token}」查看结果" in joined and "subscribemsg" not in joined


def test_the_confirmation_promises_shipping_news_only_by_what_will_carry_it(subscribing):
    bot = subscribing
    monday_morning(bot)
    token = share_in_chat(bot)
    done = claim(bot, browser(bot, "o_page"), token)
    assert done.url.endswith("/done")
    assert "发货时也会短信告诉你" in done.text  # the webhook backend sends every kind
    assert "想在微信里收到发货的消息" in done.text and "微信通知我一次" in done.text
    assert not promises.texts_shipping(
        parse(make_raw_config("sqlite:///x.db", "http://127.0.0.1:8080", sms=ALIYUN_NO_SHIPPED))
    ), "a vendor without an order_shipped template sends no such SMS: none is promised"


ALIYUN_NO_SHIPPED = {
    "backend": "aliyun",
    "aliyun": {"access_key_id": "k", "access_key_secret": "s", "sign_name": "礼物",
               "template_code": "SMS_1", "templates": {"order_cancelled": "SMS_2"}},
}  # fmt: skip


@BOTH_DATABASES
def test_the_migration_of_subscriptions_goes_down_and_up_again(subscribing):
    bot = subscribing
    token = a_draw(bot)
    subscribed_through_wechat(bot, token)
    runner = Runner(database.obj, directory=str(storage_db.MIGRATIONS))
    undone = migrations_down_through(runner, "0011_one_time_subscriptions")
    assert not SubscriptionGrant.table_exists()
    assert "sent_by" not in {c.name for c in database.obj.get_columns("outbox")}
    assert storage_db.migrate() == undone[::-1]
    assert SubscriptionGrant.select().count() == 0 and not diff_models(database.obj, ALL_MODELS)
