"""Shipping from a courier's file and correcting a tracking number, through the real command
line against the real server (PRODUCT.md, "Contract, fourth part" → Operators).

`orders ship --from FILE` reads `order_no,carrier,tracking` (UTF-8 with or without a BOM, or
GB18030 as Excel saves it): each row shipped, corrected, unchanged or failed (named, with the
reason); exit 0 when none failed, 1 otherwise; the same file twice texts nobody twice.
`orders ship NO --carrier C --tracking T` on a shipped order corrects them and tells the
recipient once.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest
from conftest import ROOT
from helpers import BOTH_DATABASES, chat_to, sms_of
from operating import Operator, ordered_in_chat

from storage.models import Order, Outbox

HEADER = "order_no,carrier,tracking"


@pytest.fixture
def operator(bot, tmp_path) -> Operator:
    return Operator(bot, tmp_path)


def two_orders(bot) -> tuple[Order, Order]:
    first = ordered_in_chat(bot, recipient="o_friend", number="1")
    second = ordered_in_chat(bot, recipient="o_friend2", number="2")
    bot.drain()
    return first, second


def courier_file(tmp_path, rows: list[str], encoding="utf-8", bom=False, name="shipped.csv"):
    path = tmp_path / name
    text = "\r\n".join([HEADER, *rows]) + "\r\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return path


def texts(bot) -> int:
    return len(bot.sms.received) + len(bot.fake_wechat.messages)


@BOTH_DATABASES
def test_a_file_ships_each_row_and_the_same_file_again_texts_nobody(bot, operator, tmp_path):
    first, second = two_orders(bot)
    path = courier_file(
        tmp_path, [f"{first.order_no},顺丰,SF1001", f"{second.order_no.lower()},圆通,YT2002"]
    )

    ran = operator("orders", "ship", "--from", str(path))

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        f"line 2: {first.order_no} shipped 顺丰 SF1001",
        f"line 3: {second.order_no} shipped 圆通 YT2002",
        "2 rows: 2 shipped, 0 corrected, 0 unchanged, 0 failed",
    ]
    bot.drain()
    assert [s["phone"] for s in sms_of(bot, "order_shipped")] == ["+8613800138000"] * 2
    assert "圆通，单号 YT2002" in chat_to(bot, "o_friend2")[-1]
    told = texts(bot)

    again = operator("orders", "ship", "--from", str(path))

    assert again.returncode == 0
    assert again.stdout.splitlines()[-1] == "2 rows: 0 shipped, 0 corrected, 2 unchanged, 0 failed"
    bot.drain()
    assert texts(bot) == told, "the same file twice texts nobody twice"
    assert [(o.status, o.carrier, o.tracking) for o in Order.select().order_by(Order.id)] == [
        ("shipped", "顺丰", "SF1001"), ("shipped", "圆通", "YT2002"),
    ]  # fmt: skip


def test_excels_gb18030_and_a_utf8_bom_read_alike(bot, operator, tmp_path):
    first, second = two_orders(bot)
    gb = courier_file(tmp_path, [f"{first.order_no},顺丰速运,SF1"], "gb18030", name="gb.csv")
    bom = courier_file(tmp_path, [f"{second.order_no},中通快递,ZT2"], bom=True, name="bom.csv")

    assert operator.ok("orders", "ship", "--from", str(gb))[0].endswith("shipped 顺丰速运 SF1")
    assert operator.ok("orders", "ship", "--from", str(bom))[0].endswith("shipped 中通快递 ZT2")
    assert Order.get_by_id(first.id).carrier == "顺丰速运"
    assert Order.get_by_id(second.id).carrier == "中通快递"


def test_rows_that_cannot_ship_fail_by_name_and_the_others_ship(bot, operator, tmp_path):
    first, second = two_orders(bot)
    operator.ok("orders", "cancel", second.order_no)
    path = courier_file(
        tmp_path,
        [
            "G000000-XXXXX,顺丰,SF9",  # no such order
            f"{second.order_no},顺丰,SF8",  # cancelled
            f"{first.order_no},,",  # neither carrier nor tracking
            f"{first.order_no},顺丰,{'9' * 80}",  # a tracking number no order can keep
            ",顺丰,SF7",  # no order number
            "",  # a blank line is skipped
            f"{first.order_no},顺丰,SF1",
            f"{first.order_no},韵达,YD1",  # the same order on a later line, saying otherwise
        ],
    )

    ran = operator("orders", "ship", "--from", str(path))

    assert ran.returncode == 1
    assert ran.stdout.splitlines() == [
        "line 2: G000000-XXXXX failed: no such order",
        f"line 3: {second.order_no} failed: the order is cancelled",
        f"line 4: {first.order_no} failed: neither carrier nor tracking number "
        "(--no-tracking ships without)",
        f"line 5: {first.order_no} failed: tracking number longer than 64 characters",
        "line 6: (no order number) failed: no order number",
        f"line 8: {first.order_no} shipped 顺丰 SF1",
        f"line 9: {first.order_no} failed: line 8 ships it with another carrier or tracking",
        "7 rows: 1 shipped, 0 corrected, 0 unchanged, 6 failed",
    ]
    assert ran.stderr.strip() == "6 rows failed: lines 2, 3, 4, 5, 6, 9"
    assert (Order.get_by_id(first.id).carrier, Order.get_by_id(second.id).status) == (
        "顺丰", "cancelled",
    )  # fmt: skip


def test_a_file_with_no_tracking_ships_rows_without_any(bot, operator, tmp_path):
    first, _ = two_orders(bot)
    path = courier_file(tmp_path, [f"{first.order_no},,"])
    assert operator.ok("orders", "ship", "--from", str(path), "--no-tracking")[0] == (
        f"line 2: {first.order_no} shipped (no tracking)"
    )


def test_a_file_that_is_not_a_courier_csv_is_refused_whole_exit_2(bot, operator, tmp_path):
    first, _ = two_orders(bot)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text(f"单号,快递\n{first.order_no},顺丰\n", encoding="utf-8")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(f"{HEADER}\n{first.order_no},顺丰,SF1\n".encode("utf-16"))
    for path, says in (
        (wrong, "must name the columns order_no,carrier,tracking"),
        (utf16, "is neither UTF-8 nor GB18030 text"),
        (tmp_path / "missing.csv", "cannot read"),
    ):
        ran = operator("orders", "ship", "--from", str(path))
        assert ran.returncode == 2 and says in ran.stderr and ran.stdout == "", ran.stderr
    assert Order.get_by_id(first.id).status == "placed"
    both = operator("orders", "ship", first.order_no, "--from", str(wrong))
    assert both.returncode == 2 and "usage: python -m bot orders ship" in both.stderr


@BOTH_DATABASES
def test_a_correction_tells_the_recipient_once_with_the_new_tracking(bot, operator, tmp_path):
    order = ordered_in_chat(bot)
    operator.ok("orders", "ship", order.order_no, "--carrier", "顺丰", "--tracking", "SF123")
    bot.drain()
    told = texts(bot)

    fixed = operator.ok("orders", "ship", order.order_no, "--tracking", "SF1234567890")
    again = operator.ok("orders", "ship", order.order_no, "--tracking", "SF1234567890")
    bot.drain()

    assert fixed == [f"{order.order_no} corrected: 顺丰 SF1234567890"]
    assert again == [f"{order.order_no} unchanged: 顺丰 SF1234567890"]
    assert texts(bot) == told + 2, "one SMS and one chat message, once"
    sms = sms_of(bot, "order_shipped")[-1]
    assert sms["text"] == (
        f"【礼物小助手】您的礼物运单信息已更正：订单号 {order.order_no}，顺丰 单号 SF1234567890。以此为准。"
    )
    assert sms["params"] == {"order_no": order.order_no, "carrier": "顺丰",
                             "tracking": "SF1234567890"}  # fmt: skip
    assert chat_to(bot, "o_friend")[-1].startswith(
        "📦 你领取的「明前龙井礼盒」运单信息已更正：顺丰，单号 SF1234567890，以此为准。"
    )
    row = Order.get_by_id(order.id)
    assert (row.status, row.carrier, row.tracking) == ("shipped", "顺丰", "SF1234567890")

    # Changed back, and then again: each correction tells, none twice.
    operator.ok("orders", "ship", order.order_no, "--tracking", "SF123")
    operator.ok("orders", "ship", order.order_no, "--tracking", "SF1234567890")
    bot.drain()
    assert texts(bot) == told + 6
    keys = [r.key for r in Outbox.select().where(Outbox.key.contains(":order_corrected:"))]
    assert len(keys) == len(set(keys)) == 3


def test_a_file_corrects_what_the_courier_changed(bot, operator, tmp_path):
    first, second = two_orders(bot)
    operator.ok("orders", "ship", first.order_no, "--carrier", "顺丰", "--tracking", "SF1")
    operator.ok("orders", "ship", second.order_no, "--carrier", "顺丰", "--tracking", "SF2")
    path = courier_file(tmp_path, [f"{first.order_no},顺丰,SF1", f"{second.order_no},京东,JD2"])
    assert operator.ok("orders", "ship", "--from", str(path)) == [
        f"line 2: {first.order_no} unchanged",
        f"line 3: {second.order_no} corrected 顺丰 SF2 → 京东 JD2",
        "2 rows: 0 shipped, 1 corrected, 1 unchanged, 0 failed",
    ]


def test_on_a_terminal_the_rows_scroll_above_a_progress_bar(bot, operator, tmp_path):
    first, second = two_orders(bot)
    path = courier_file(tmp_path, [f"{first.order_no},顺丰,SF1", f"{second.order_no},顺丰,SF2"])
    leader, follower = pty.openpty()
    ran = subprocess.run(
        [sys.executable, "-m", "bot", "orders", "ship", "--from", str(path),
         "--config", str(operator.path)],
        cwd=ROOT, stdout=follower, stderr=subprocess.PIPE, timeout=60,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
    )  # fmt: skip
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    shown = screen.decode("utf-8", "replace")
    assert ran.returncode == 0, ran.stderr
    assert f"{first.order_no} shipped 顺丰 SF1" in shown and "2 rows: 2 shipped" in shown
    assert "━" in shown or "shipping" in shown, "a progress bar was drawn"
