"""The chat form under crashes and concurrency, on real `python -m bot serve` processes.

A `cluster` starts server processes on one database (SQLite file or a
PostgreSQL schema), each on its own port, with the SMS webhook and the WeChat
API faked in this process. Servers are killed with SIGKILL (a crash, not a
shutdown) and started again on the same port; every child is killed at teardown.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import (
    ANSWERS,
    BOTH_DATABASES,
    claim_messages,
    confirm_card,
    conversation,
    monday_morning,
    share_in_chat,
    share_through,
)

from storage.models import Gift, InboundMessage, Order, Outbox, Share


def recipient_messages(token: str) -> list[str]:
    return [f"领取 {token}", *ANSWERS.values(), "确认"]


# What each reply of the recipient's dialogue shows, in order.
EXPECTED = ["【1/4】收货人姓名", "【2/4】收货人手机", "【3/4】收货地址", "【4/4】收货时间"]
EXPECTED += ["请核对收货信息", "领取成功"]


# -- (a) a crash mid-form ------------------------------------------------------


@BOTH_DATABASES
def test_a_server_killed_mid_form_resumes_exactly_where_the_user_was(cluster):
    server = cluster.start("one")
    token = share_through(server.wx)
    messages = recipient_messages(token)
    for text in messages[:3]:
        server.wx.text("o_friend", text)
    before = conversation("o_friend")
    assert before.step == "address" and set(before.answers) == {"name", "phone"}

    server.kill()
    with pytest.raises(OSError):
        server.wx.text("o_friend", messages[3])  # nobody listens while it is down
    server.start()

    reply = server.wx.text("o_friend", messages[3])["Content"]
    assert reply.startswith(EXPECTED[3]), reply
    after = conversation("o_friend")
    assert after.step == "delivery" and after.version == before.version + 1
    assert set(after.answers) == {"name", "phone", "address"}
    for text, expected in zip(messages[4:], EXPECTED[4:], strict=True):
        assert expected in server.wx.text("o_friend", text)["Content"]
    order = Order.get()
    assert (order.recipient_id, order.name, order.channel) == ("o_friend", "张小红", "chat")
    sent = cluster.wait_for_sms(1)
    assert [s["params"]["order_no"] for s in sent] == [order.order_no]
    assert claim_messages().where(Outbox.status == "sent").count() == 2  # SMS and giver's notice


# -- (b) two workers, one user -------------------------------------------------


@BOTH_DATABASES
def test_two_workers_answering_alternate_messages_of_one_user_lose_nothing(cluster):
    servers = [cluster.start("a"), cluster.start("b")]
    giver = ["1", "送", "2", "生日快乐！"]
    for n, text in enumerate(giver):
        servers[n % 2].wx.text("o_giver", text)
    token = confirm_card(servers[0].wx, "o_giver")["Url"].rsplit("/", 1)[1]
    assert Share.get().quantity == 2

    for n, (text, expected) in enumerate(zip(recipient_messages(token), EXPECTED, strict=True)):
        reply = servers[n % 2].wx.text("o_friend", text)["Content"]
        assert expected in reply, (n, reply)
    order = Order.get()
    assert (order.name, order.phone) == ("张小红", "+8613800138000")
    assert order.region == "广东省深圳市南山区"
    assert Order.select().count() == 1 and Share.get().claimed == 1
    assert conversation("o_friend").version == len(EXPECTED)  # every message applied once
    assert conversation("o_giver").version == len(giver) + 1  # and its 确认


# -- (c) quick messages from one user ------------------------------------------


@BOTH_DATABASES
def test_two_quick_messages_and_their_retries_are_each_applied_once(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    bot.wx.text("o_friend", f"领取 {token}")
    version = conversation("o_friend").version
    seen = InboundMessage.select().where(InboundMessage.openid == "o_friend").count()
    name = bot.wx.text_xml("o_friend", ANSWERS["name"])
    phone = bot.wx.text_xml("o_friend", ANSWERS["phone"])
    with ThreadPoolExecutor(4) as pool:  # each sent twice, as WeChat retries a slow reply
        replies = [r["Content"] for r in pool.map(bot.wx.push, [name, phone, name, phone])]
    assert replies[0] == replies[2] and replies[1] == replies[3]

    row = conversation("o_friend")
    assert row.version == version + 2
    assert InboundMessage.select().where(InboundMessage.openid == "o_friend").count() == seen + 2
    name_reply, phone_reply = replies[:2]
    assert "【2/4】收货人手机" in name_reply
    if "不像人名" in phone_reply:  # the number came first, was read as a name and refused
        assert row.answers == {"name": "张小红"} and row.step == "phone"
    else:
        assert "【3/4】收货地址" in phone_reply
        assert row.answers == {"name": "张小红", "phone": "+8613800138000"}
        assert row.step == "address"


# -- (d) thirty people, one unit -----------------------------------------------


@BOTH_DATABASES
def test_thirty_people_racing_for_a_one_unit_share_make_exactly_one_order(cluster):
    servers = [cluster.start("a"), cluster.start("b")]
    token = share_through(servers[0].wx)
    gift = Gift.get_by_id("tea-longjing")
    racers = [f"o_racer_{n:02d}" for n in range(30)]

    def fill(n: int) -> str:
        for text in recipient_messages(token)[:-1]:
            reply = servers[n % 2].wx.text(racers[n], text)
        return reply["Content"]

    with ThreadPoolExecutor(10) as pool:
        assert all("请核对收货信息" in summary for summary in pool.map(fill, range(30)))

    start = threading.Barrier(30)

    def confirm(n: int) -> str:
        start.wait(10)
        return servers[n % 2].wx.text(racers[n], "确认")["Content"]

    with ThreadPoolExecutor(30) as pool:
        replies = list(pool.map(confirm, range(30)))
    won = [racers[n] for n, reply in enumerate(replies) if "领取成功" in reply]
    lost = [reply for reply in replies if "来晚了一步，这份礼物已经被领完了" in reply]
    assert len(won) == 1 and len(lost) == 29

    (order,) = Order.select()
    assert order.recipient_id == won[0]
    share, after = Share.get(), Gift.get_by_id("tea-longjing")
    assert (share.quantity, share.claimed) == (1, 1)
    assert (after.stock, after.committed) == (gift.stock, gift.committed)
    assert [s["params"]["order_no"] for s in cluster.wait_for_sms(1)] == [order.order_no]
