"""An order's life after it is placed, through the real command line against the real server.

The giver shares in chat and the recipient claims (in chat, so they are inside WeChat's
48-hour window, or on the web, so they are not); the operator then runs `python -m bot
orders ship|deliver|cancel` in a subprocess on the server's own database, and the test
works the server's outbox (`bot.drain()`) and reads what people were told: the SMS the
webhook received, the chat messages the fake WeChat API took, the `我收到的` list, the
exports, `outbox list`, `catalogue list`, `shares list` and `users show`.

The contract (PRODUCT.md, "Order lifecycle (CLI)"): statuses move only placed → shipped →
delivered, or placed/shipped → cancelled; any other move exits 1 naming the order's status.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from helpers import (
    BOTH_DATABASES,
    PAID,
    browser,
    chat_to,
    claim,
    fill,
    say,
    share_in_chat,
    sms_of,
    write_config,
)
from operating import Operator, ordered_in_chat
from paying import refunds_made

from bot.render import money
from storage.models import Gift, Order, Outbox, Share, utcnow

STATUSES = ("placed", "shipped", "delivered", "cancelled")
VERB = {"shipped": "ship", "delivered": "deliver", "cancelled": "cancel"}
# Read from the contract, not from bot/gifting/fulfilment.py: the moves an operator may make.
ALLOWED = {("placed", "shipped"), ("shipped", "delivered"), ("placed", "cancelled"),
           ("shipped", "cancelled")}  # fmt: skip
# Shipping a shipped order is no move: it corrects carrier and tracking (or changes nothing).
REFUSED = sorted(
    (s, to) for s in STATUSES for to in VERB if (s, to) not in ALLOWED | {("shipped", "shipped")}
)
# How an order reaches each status, from placed.
ROUTE = {"placed": (), "shipped": ("ship",), "delivered": ("ship", "deliver"),
         "cancelled": ("cancel",)}  # fmt: skip
MOVED_FIELDS = ("status", "carrier", "tracking", "shipped_at", "delivered_at", "cancelled_at")
LISTED = {"placed": "待发货", "shipped": "已发货", "delivered": "已送达", "cancelled": "已取消"}


@pytest.fixture
def operator(bot, tmp_path) -> Operator:
    return Operator(bot, tmp_path)


# -- how orders are made, and what people see ------------------------------------------


def ordered_on_web(bot, recipient="o_visitor", giver="o_giver") -> Order:
    """Claimed on the web: the recipient never wrote to the account, so no chat window."""
    token = share_in_chat(bot, giver=giver)
    assert claim(bot, browser(bot, recipient), token).status_code == 200
    return Order.get(Order.recipient == recipient)


def my_orders(bot, openid: str) -> str:
    return say(bot, openid, "我收到的")


def stock(operator, gift_id: str) -> dict:
    return next(g for g in operator.json("catalogue", "list") if g["id"] == gift_id)


def exported(operator, order_no: str) -> dict:
    return next(r for r in operator.json("orders", "export") if r["order_no"] == order_no)


def reach(operator, order: Order, status: str) -> None:
    for verb in ROUTE[status]:
        operator.ok("orders", *how(verb, order.order_no))
    assert Order.get_by_id(order.id).status == status


def how(verb: str, order_no: str) -> tuple[str, ...]:
    """A verb's arguments: shipping without carrier and tracking has to say so."""
    return (verb, order_no, "--no-tracking") if verb == "ship" else (verb, order_no)


def snapshot(order: Order) -> dict:
    """Everything a move could change: the order's row, its gift's stock, its share, the outbox."""
    row = Order.get_by_id(order.id)
    gift = Gift.get_by_id(order.gift_id)
    share = Share.get_by_id(order.share_id)
    return {
        "order": {k: getattr(row, k) for k in MOVED_FIELDS},
        "gift": (gift.stock, gift.committed),
        "share": (share.claimed, share.released),
        "outbox": [(r.id, r.key, r.status) for r in Outbox.select().order_by(Outbox.id)],
    }


# -- every move, allowed and refused ---------------------------------------------------


def test_the_contract_has_four_moves_and_seven_refusals():
    assert len(ALLOWED) == 4 and len(REFUSED) == 7
    assert ("placed", "delivered") in REFUSED and ("cancelled", "cancelled") in REFUSED


@BOTH_DATABASES
@pytest.mark.parametrize(("start", "to"), sorted(ALLOWED), ids="{0[0]}-to-{0[1]}".format)
def test_an_allowed_move_changes_the_status_everyone_sees(bot, operator, start, to):
    order = ordered_in_chat(bot)
    reach(operator, order, start)

    assert operator.ok("orders", *how(VERB[to], order.order_no)) == [f"{order.order_no} {to}"]

    row = exported(operator, order.order_no)
    assert row["status"] == to
    when = dt.datetime.fromisoformat(row[f"{to}_at"])
    assert when.utcoffset() == dt.timedelta(hours=8)  # the configured zone, with its offset
    assert abs(when.astimezone(dt.UTC).replace(tzinfo=None) - utcnow()) < dt.timedelta(minutes=1)
    listed = my_orders(bot, "o_friend")
    assert f"订单号 {order.order_no}\n   {LISTED[to]}" in listed


@BOTH_DATABASES
@pytest.mark.parametrize(("start", "to"), REFUSED, ids="{0[0]}-to-{0[1]}".format)
def test_a_refused_move_exits_1_naming_the_status_and_changes_nothing(bot, operator, start, to):
    order = ordered_in_chat(bot)
    reach(operator, order, start)
    bot.drain()
    before, sms, chats = (
        snapshot(order),
        len(bot.sms.received),
        len(bot.fake_wechat.messages),
    )

    refused = operator("orders", *how(VERB[to], order.order_no))

    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == f"order {order.order_no} is {start}: it cannot be {to}"
    assert snapshot(order) == before
    bot.drain()
    assert (len(bot.sms.received), len(bot.fake_wechat.messages)) == (sms, chats), "nobody told"


def test_an_unknown_order_number_exits_1_saying_there_is_no_such_order(bot, operator):
    ordered_in_chat(bot)
    for verb in VERB.values():
        result = operator("orders", *how(verb, "G000000-XXXXX"))
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.strip() == "no order G000000-XXXXX"
    assert [o.status for o in Order.select()] == ["placed"]


def test_an_order_number_typed_in_lower_case_with_spaces_or_full_width_is_found(bot, operator):
    order = ordered_in_chat(bot)
    number = order.order_no
    assert operator.ok("orders", *how("ship", f"  {number.lower()} ")) == [f"{number} shipped"]
    assert operator.ok("orders", "deliver", number.lower().replace("-", " - ")) == [
        f"{number} delivered"
    ]
    assert Order.get_by_id(order.id).status == "delivered"
    full_width = number.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})  # Ｇ２６１…
    refused = operator("orders", "cancel", full_width)
    assert refused.stderr.strip() == f"order {number} is delivered: it cannot be cancelled"


# -- shipping ----------------------------------------------------------------------------


@BOTH_DATABASES
def test_shipping_tells_the_recipient_by_sms_and_chat_with_carrier_and_tracking(bot, operator):
    order = ordered_in_chat(bot)
    bot.drain()

    operator.ok("orders", "ship", order.order_no, "--carrier", "顺丰", "--tracking", "SF1234567890")
    bot.drain()

    (sms,) = sms_of(bot, "order_shipped")
    assert sms["phone"] == "+8613800138000"
    assert sms["text"] == (
        f"【礼物小助手】您的礼物已发货：订单号 {order.order_no}，顺丰 单号 SF1234567890。"
    )
    shipped = chat_to(bot, "o_friend")[-1]
    assert shipped.startswith("📦 你领取的「明前龙井礼盒」已发货：顺丰，单号 SF1234567890。")
    assert f"订单号 {order.order_no}" in shipped
    assert not [m for m in chat_to(bot, "o_giver") if "发货" in m], "the giver is not told"
    assert "已发货：顺丰 SF1234567890，送达时间" in my_orders(bot, "o_friend")
    assert Outbox.get(Outbox.key == f"notice:shipped:{order.order_no}").status == "sent"


@BOTH_DATABASES
def test_the_export_carries_carrier_tracking_and_every_time_with_its_offset(bot, operator):
    order = ordered_in_chat(bot)
    operator.ok("orders", "ship", order.order_no, "--carrier", "顺丰", "--tracking", "SF1234567890")

    row = exported(operator, order.order_no)
    csv_out = operator("orders", "export", "--format", "csv")
    (csv_row,) = csv.DictReader(io.StringIO(csv_out.stdout.lstrip("\ufeff"), newline=""))

    for r in (row, csv_row):
        assert (r["status"], r["carrier"], r["tracking"]) == ("shipped", "顺丰", "SF1234567890")
        assert r["delivered_at"] == r["cancelled_at"] == ""
        for name in ("created_at", "shipped_at"):  # the configured zone's, as delivery_time
            assert dt.datetime.fromisoformat(r[name]).utcoffset() == dt.timedelta(hours=8), name
        start, end = (dt.datetime.fromisoformat(t) for t in r["delivery_time"].split("/"))
        assert start.utcoffset() == end.utcoffset() == dt.timedelta(hours=8)
    shipped_at = (
        dt.datetime.fromisoformat(row["shipped_at"]).astimezone(dt.UTC).replace(tzinfo=None)
    )
    assert abs(shipped_at - utcnow()) < dt.timedelta(minutes=1)
    assert csv_row["shipped_at"] == row["shipped_at"]


def test_shipping_without_carrier_or_tracking_needs_no_tracking_to_say_so(bot, operator):
    order = ordered_in_chat(bot)
    bot.drain()
    before = snapshot(order)

    refused = operator("orders", "ship", order.order_no)

    assert refused.returncode == 2 and refused.stdout == ""
    assert (
        "--no-tracking" in refused.stderr and "usage: python -m bot orders ship" in refused.stderr
    )
    assert snapshot(order) == before
    bot.drain()
    assert sms_of(bot, "order_shipped") == []


def test_shipping_with_no_tracking_still_tells_the_recipient(bot, operator):
    order = ordered_in_chat(bot)

    assert operator.ok("orders", *how("ship", order.order_no)) == [f"{order.order_no} shipped"]
    bot.drain()

    (sms,) = sms_of(bot, "order_shipped")
    assert sms["text"] == f"【礼物小助手】您的礼物已发货：订单号 {order.order_no}。"
    assert chat_to(bot, "o_friend")[-1] == (
        f"📦 你领取的「明前龙井礼盒」已发货。\n订单号 {order.order_no}。回复「我收到的」随时查看。"
    )
    row = exported(operator, order.order_no)
    assert (row["status"], row["carrier"], row["tracking"]) == ("shipped", "", "")
    assert "已发货，送达时间" in my_orders(bot, "o_friend")


def test_a_tracking_number_without_a_carrier_is_still_shown(bot, operator):
    order = ordered_in_chat(bot)

    operator.ok("orders", "ship", order.order_no, "--tracking", "YT9876543210")
    bot.drain()

    assert "YT9876543210" in sms_of(bot, "order_shipped")[0]["text"]
    assert "单号 YT9876543210" in chat_to(bot, "o_friend")[-1]
    assert "已发货：单号 YT9876543210，送达时间" in my_orders(bot, "o_friend")


# -- delivery and cancelling ---------------------------------------------------------


def test_delivery_tells_the_giver_and_the_lists_say_delivered(bot, operator):
    order = ordered_in_chat(bot)
    operator.ok("orders", "ship", order.order_no, "--carrier", "顺丰", "--tracking", "SF1")
    bot.drain()

    assert operator.ok("orders", "deliver", order.order_no) == [f"{order.order_no} delivered"]
    bot.drain()

    assert chat_to(bot, "o_giver")[-1] == (
        f"🎉 你送出的「明前龙井礼盒」已送到好友手中（订单 {order.order_no}）。"
    )
    assert not [m for m in chat_to(bot, "o_friend") if "送达" in m or "送到" in m]
    assert sms_of(bot, "order_delivered") == []
    assert f"订单号 {order.order_no}\n   已送达" in my_orders(bot, "o_friend")
    (person,) = operator.json("users", "show", "o_friend")["orders"]
    assert (person["status"], person["carrier"], person["tracking"]) == ("delivered", "顺丰", "SF1")


@BOTH_DATABASES
def test_cancelling_returns_the_unit_to_stock_and_tells_both_sides(bot, operator):
    order = ordered_in_chat(bot)
    bot.drain()
    before = stock(operator, "tea-longjing")
    shares_before = operator.json("shares", "list")

    assert operator.ok("orders", "cancel", order.order_no) == [f"{order.order_no} cancelled"]
    bot.drain()

    after = stock(operator, "tea-longjing")
    assert after["stock"] == before["stock"] + 1
    assert after["claimed"] == before["claimed"] - 1
    assert after["reserved"] == before["reserved"]
    table = [line.split() for line in operator.ok("catalogue", "list")]
    assert table[1][:2] == ["tea-longjing", "-"] and table[1][4] == str(after["stock"])
    # The claim stays on the share's record: the unit went back to the shop, not to the
    # link (a paid share refunds a cancelled order, so nobody else may claim it again).
    assert operator.json("shares", "list") == shares_before
    (sms,) = sms_of(bot, "order_cancelled")
    assert (
        sms["text"]
        == f"【礼物小助手】您的礼物订单 {order.order_no}（明前龙井礼盒）已取消，不会再配送。"
    )
    assert chat_to(bot, "o_friend")[-1] == (
        f"你领取的「明前龙井礼盒」订单 {order.order_no} 已取消，不会再配送。有疑问请回复「人工」。"
    )
    # Money is spoken of only when it was paid: then the unit's price is on its way back.
    paid_back = f"这一份的 {money(Share.get().unit_price)} 会原路退款给你。" if PAID else ""
    assert chat_to(bot, "o_giver")[-1] == (
        f"你送出的「明前龙井礼盒」有一份订单已取消（订单 {order.order_no}），不会再配送。"
        f"{paid_back}有疑问请回复「人工」。"
    )
    assert f"订单号 {order.order_no}\n   已取消" in my_orders(bot, "o_friend")
    assert refunds_made(bot) == ([("cancelled", 1)] if PAID else []), "paid for: refunded"
    given = bot.wx.text("o_giver", "我送出的")["Content"]
    assert "1. 明前龙井礼盒 × 1：已全部领取（其中 1 份订单已取消）" in given


@BOTH_DATABASES
def test_two_operators_cancelling_one_order_at_once_return_one_unit(bot, operator):
    order = ordered_in_chat(bot)
    before = stock(operator, "tea-longjing")["stock"]

    runs = [operator.start("orders", "cancel", order.order_no) for _ in range(2)]
    results = sorted((run.wait(60), *run.communicate()) for run in runs)

    (ok, out, _), (refused, _, err) = results
    assert (ok, refused) == (0, 1)
    assert out.strip() == f"{order.order_no} cancelled"
    assert err.strip() == f"order {order.order_no} is cancelled: it cannot be cancelled"
    assert stock(operator, "tea-longjing")["stock"] == before + 1
    keys = [r.key for r in Outbox.select().where(Outbox.key.contains("cancelled"))]
    assert sorted(keys) == sorted(
        [f"sms:order_cancelled:{order.order_no}", f"notice:cancelled:{order.order_no}:recipient",
         f"notice:cancelled:{order.order_no}:giver"]
    )  # fmt: skip


# -- outside WeChat's 48-hour window ------------------------------------------------------


@BOTH_DATABASES
def test_a_recipient_past_the_window_gets_the_sms_and_the_chat_notice_is_skipped(bot, operator):
    order = ordered_in_chat(bot)
    bot.drain()
    bot.clock.offset += dt.timedelta(hours=49)  # the recipient's last message is 49 hours old

    operator.ok("orders", "ship", order.order_no, "--carrier", "顺丰", "--tracking", "SF1234567890")
    bot.drain()

    assert "SF1234567890" in sms_of(bot, "order_shipped")[0]["text"]
    assert not [m for m in chat_to(bot, "o_friend") if "发货" in m]
    key = f"notice:shipped:{order.order_no}"
    (skipped,) = operator.json("outbox", "list", "--status", "skipped")
    assert (skipped["key"], skipped["attempts"]) == (key, 1)
    assert "outside WeChat's 48-hour window" in skipped["last_error"]
    table = operator.ok("outbox", "list", "--status", "skipped")
    assert table[0].split()[:4] == ["id", "kind", "key", "status"]
    assert key in table[1] and "skipped" in table[1] and "48-hour" in table[1]  # JSON: the whole

    bot.clock.offset += dt.timedelta(days=1)
    bot.drain()
    assert Outbox.get(Outbox.key == key).attempts == 1, "a skipped notice is never tried again"
    assert "已发货：顺丰 SF1234567890" in my_orders(bot, "o_friend"), "kept for the list"


def test_a_recipient_who_only_used_the_web_gets_the_sms_only(bot, operator):
    order = ordered_on_web(bot)
    bot.drain()

    operator.ok("orders", "ship", order.order_no, "--carrier", "顺丰", "--tracking", "SF1234567890")
    bot.drain()

    assert len(sms_of(bot, "order_shipped")) == 1
    assert chat_to(bot, "o_visitor") == []
    row = Outbox.get(Outbox.key == f"notice:shipped:{order.order_no}")
    assert row.status == "skipped" and "48-hour window" in row.last_error


def test_past_the_window_a_configured_template_message_carries_the_notice(bot_factory, tmp_path):
    bot = bot_factory(wechat={"notice_template_id": "TPL_gift_notice"})
    operator = Operator(bot, tmp_path)
    order = ordered_on_web(bot)

    operator.ok("orders", "ship", order.order_no, "--carrier", "顺丰", "--tracking", "SF1234567890")
    bot.drain()

    sent = [t for t in bot.fake_wechat.templates if t["touser"] == "o_visitor"]
    (template,) = [t for t in sent if t["data"]["keyword2"]["value"] == "已发货"]
    assert template["data"]["first"]["value"] == (
        "📦 你领取的「明前龙井礼盒」已发货：顺丰，单号 SF1234567890。"
    )
    assert template["data"]["keyword1"]["value"] == "明前龙井礼盒"
    assert Outbox.get(Outbox.key == f"notice:shipped:{order.order_no}").status == "sent"


# -- the operator's other views -------------------------------------------------------------


def test_shares_list_filters_by_status(bot, operator):
    expired = share_in_chat(bot, number="2")
    bot.clock.offset += dt.timedelta(hours=bot.config.shares.expire_hours, minutes=1)
    bot.run(bot.services.sweep_once())  # the background sweep returns its stock
    revoked = share_in_chat(bot, number="3")
    say(bot, "o_giver", "我送出的")
    assert "已撤回" in say(bot, "o_giver", "撤回 1")
    claimed = share_in_chat(bot, number="1")
    fill(bot, "o_friend", claimed)
    say(bot, "o_friend", "确认")
    still_open = share_in_chat(bot, number="4")

    by_status = {
        status: [row["token"] for row in operator.json("shares", "list", "--status", status)]
        for status in ("open", "claimed", "expired", "revoked")
    }

    assert by_status == {
        "open": [still_open], "claimed": [claimed], "expired": [expired], "revoked": [revoked],
    }  # fmt: skip
    everything = operator.json("shares", "list")
    assert [row["token"] for row in everything] == [still_open, claimed, revoked, expired]
    table = [line.split() for line in operator.ok("shares", "list", "--status", "claimed")]
    assert table[0] == ["id", "token", "giver", "gift", "quantity", "claimed", "status",
                        "expires_at"]  # fmt: skip
    assert table[1][1:7] == [claimed, "o_giver", "明前龙井礼盒", "1", "1", "claimed"]
    bad = operator("shares", "list", "--status", "lost")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_users_show_has_a_persons_shares_and_orders_for_support(bot, operator):
    order = ordered_in_chat(bot)
    operator.ok("orders", "ship", order.order_no, "--carrier", "顺丰", "--tracking", "SF1234567890")

    friend = operator.json("users", "show", "o_friend")
    giver = operator.json("users", "show", "o_giver")
    shown = operator.ok("users", "show", "o_friend")

    assert friend["shares"] == []
    (received,) = friend["orders"]
    assert received["order_no"] == order.order_no and received["status"] == "shipped"
    assert (received["carrier"], received["tracking"]) == ("顺丰", "SF1234567890")
    assert received["phone"] == "+8613800138000"
    seen = dt.datetime.fromisoformat(friend["last_message_at"])
    assert seen.utcoffset() == dt.timedelta(hours=8)  # the configured zone, with its offset
    (given,) = giver["shares"]
    assert (given["gift"], given["claimed"], given["status"]) == ("明前龙井礼盒", 1, "claimed")
    assert giver["orders"] == []
    assert shown[0].startswith("openid: o_friend")
    assert "shares given:" in shown and "orders received:" in shown
    after_orders = shown[shown.index("orders received:") + 1 :]
    assert after_orders[0].split() == ["order_no", "gift", "status", "created_at", "carrier",
                                       "tracking"]  # fmt: skip
    assert after_orders[1].split()[:3] == [order.order_no, "明前龙井礼盒", "shipped"]
    assert "SF1234567890" in after_orders[1]
    unknown = operator("users", "show", "o_nobody")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "no user o_nobody"


def test_catalogue_sync_dry_run_says_what_would_change_and_changes_nothing(bot, operator, tmp_path):
    gifts = bot.raw_config["gifts"]
    edited = {
        **bot.raw_config,
        "gifts": [{**gifts[0], "price": gifts[0]["price"] + 100}, *gifts[1:-1],
                  {"id": "tea-puer", "name": "普洱茶饼", "price": 22800,
                   "description": "云南勐海熟普 357 克。", "image": "/static/gifts/tea.png",
                   "stock": 12}],
    }  # fmt: skip
    path = write_config(tmp_path, edited, "edited.toml")
    before = operator.json("catalogue", "list")
    menu = say(bot, "o_giver", "礼品")

    dry = operator("catalogue", "sync", "--dry-run", config=path)

    assert dry.returncode == 0, dry.stderr
    assert sorted(dry.stdout.splitlines()) == [
        "would have added tea-puer",
        f"would have changed {gifts[0]['id']}",
        f"would have retired {gifts[-1]['id']}",
    ]
    assert operator.json("catalogue", "list") == before
    assert say(bot, "o_giver", "礼品") == menu, "the chat's catalogue is untouched"
    assert operator.ok("catalogue", "sync", "--dry-run") == ["catalogue up to date"]
    assert operator("catalogue", "sync", config=path).returncode == 0
    assert "tea-puer" in [g["id"] for g in operator.json("catalogue", "list")]
