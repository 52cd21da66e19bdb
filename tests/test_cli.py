"""The command line, `python -m bot COMMAND --config PATH`, run for real in a subprocess.

Each test gets a shop: config.example.toml with `[database] url` on a fresh SQLite file
in tmp_path. Shares and orders are made in-process on that same file (as the chat and the
web form would make them); the CLI reads and changes them from its own process. One export
test starts instead from a gift shared in chat and claimed on the web of the real server
(the `bot` fixture), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
import uvloop
from conftest import ROOT, merge
from fakes.wechat_api import APP_ID, APP_SECRET, FakeWeChat
from helpers import (
    BOTH_DATABASES,
    browser,
    claim,
    first_slot,
    free_port,
    share_in_chat,
)
from shop import XIAOHONG, lines, stock_by_id

from bot.app import run_loop
from bot.gifting import shares
from bot.words import MENU_KEYS
from storage.models import Gift, Outbox, Share, utcnow

CONTRACT_ORDER_FIELDS = {
    "order_no",
    "gift_id",
    "name",
    "phone",
    "address",
    "delivery_time",
    "status",
    "created_at",
}
# -- help ---------------------------------------------------------------------------


def test_help_lists_the_verbs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0
    for verb in ("serve", "catalogue", "menu", "orders", "outbox"):
        assert verb in result.stdout


def test_every_command_keeps_the_books_of_a_bought_share(tmp_path):
    """The command line imports only what its commands need, and a command that cancels an
    order of a paid share moves money: money's side of a share's moves must be kept there."""
    probe = "import handlers.cli; from bot.gifting.life import moves; print(len(moves._books))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "1"


# -- catalogue ------------------------------------------------------------------------


def test_catalogue_sync_reports_added_changed_and_retired_gifts(shop):
    ids = [g["id"] for g in shop.raw["gifts"]]
    assert lines(shop.cli("catalogue", "sync")) == [f"added {gid}" for gid in ids]
    assert lines(shop.cli("catalogue", "sync")) == ["catalogue up to date"]

    shop.gift("mooncake")["price"] = 13800
    retired = shop.raw["gifts"].pop()
    shop.raw["gifts"].append(
        {
            "id": "tea-puer",
            "name": "普洱茶饼",
            "price": 22800,
            "description": "云南勐海熟普 357 克。",
            "image": "/static/gifts/tea.png",
            "stock": 12,
        }
    )
    shop.save()
    assert sorted(lines(shop.cli("catalogue", "sync"))) == [
        "added tea-puer",
        "changed mooncake",
        f"retired {retired['id']}",
    ]
    assert lines(shop.cli("catalogue", "sync")) == ["catalogue up to date"]

    listed = {g["id"]: g for g in shop.cli_json("catalogue", "list")}
    assert retired["id"] not in listed
    assert listed["mooncake"]["price_fen"] == 13800  # JSON: integer fen, named so
    assert listed["tea-puer"]["name"] == "普洱茶饼"


def test_catalogue_list_json_shows_stock_not_reserved_by_shares(shop):
    lines(shop.cli("catalogue", "sync"))
    listed = shop.cli_json("catalogue", "list")
    assert [g["id"] for g in listed] == [g["id"] for g in shop.raw["gifts"]]
    for gift in listed:
        assert {"id", "name", "stock"} <= gift.keys()
    assert listed[0]["name"] == "明前龙井礼盒"  # Chinese as is, not \u escapes
    before = {g["id"]: g["stock"] for g in listed}

    shop.open().share("tea-longjing", quantity=3)

    after = stock_by_id(shop)
    assert after["tea-longjing"] == before["tea-longjing"] - 3
    (tea,) = [g for g in shop.cli_json("catalogue", "list") if g["id"] == "tea-longjing"]
    assert (tea["reserved"], tea["claimed"]) == (3, 0)
    assert {k: v for k, v in after.items() if k != "tea-longjing"} == {
        k: v for k, v in before.items() if k != "tea-longjing"
    }


def test_catalogue_list_shows_who_holds_what_reserved_and_claimed(shop):
    shop.open()
    share = shop.share("scarf", quantity=3)
    shop.order(share, "o_friend", variant="酒红色")
    shop.order(share, "o_other", variant="酒红色")
    table = [line.split() for line in lines(shop.cli("catalogue", "list"))]
    assert table[0] == ["id", "variant", "name", "price", "stock", "reserved", "claimed"]
    scarf = [row for row in table if row[0] == "scarf"]
    assert [(row[1], row[-1]) for row in scarf] == [
        ("-", "2"), ("燕麦色", "0"), ("酒红色", "2"), ("深灰色", "0"),
    ]  # fmt: skip
    assert scarf[0][4:] == ["12", "1", "2"] and scarf[2][2:] == ["-", "-", "-", "-", "2"]
    (listed,) = [g for g in shop.cli_json("catalogue", "list") if g["id"] == "scarf"]
    assert (listed["reserved"], listed["claimed"], listed["claimed_by_variant"]) == (
        1, 2, {"燕麦色": 0, "酒红色": 2, "深灰色": 0},
    )  # fmt: skip


def test_sync_keeps_stock_that_shares_hold_when_the_config_lowers_it(shop):
    share = shop.open().share("scarf", quantity=5)
    shop.gift("scarf")["stock"] = 2
    shop.save()

    result = shop.cli("catalogue", "sync")

    assert "kept stock of scarf at 5 (config 2)" in lines(result)
    assert stock_by_id(shop)["scarf"] == 0
    gift = Gift.get_by_id("scarf")
    assert (gift.stock, gift.committed) == (5, 5)
    assert shares.refusal(Share.get_by_id(share.id), utcnow()) is None
    assert shop.order(share, "o_friend").gift_id == "scarf"  # the reservation still delivers


# -- orders ---------------------------------------------------------------------------


def test_orders_export_json_lists_every_order_with_the_contract_fields(shop):
    share = shop.open().share("flowers", quantity=2)
    first = shop.order(share, "o_xiaohong", variant="玫瑰")
    second = shop.order(share, "o_daming", name="王大明", phone="+8613900139000")

    exported = shop.cli_json("orders", "export")

    assert [row["order_no"] for row in exported] == [first.order_no, second.order_no]
    for row in exported:
        assert row.keys() >= CONTRACT_ORDER_FIELDS
    row = exported[0]
    assert row["gift_id"] == "flowers"
    assert row["name"] == "张小红"
    assert row["phone"] == "+8613800138000"
    assert row["address"] == "广东省深圳市南山区科技园南区 8 栋 1201"
    day, (start, end) = first.delivery_date.isoformat(), first.delivery_slot.split("-")
    assert row["delivery_time"] == f"{day}T{start}:00+08:00/{day}T{end}:00+08:00"
    assert (row["delivery_date"], row["delivery_slot"]) == (day, first.delivery_slot)
    assert row["status"] == "placed" and row["carrier"] == row["tracking"] == ""
    created = dt.datetime.fromisoformat(row["created_at"])
    # Every time in the configured zone, as delivery_time is, with its offset.
    assert created.utcoffset() == dt.timedelta(hours=8), "every time carries its UTC offset"
    utc = created.astimezone(dt.UTC).replace(tzinfo=None)
    assert abs(utc - first.created_at) < dt.timedelta(seconds=1)
    assert row["shipped_at"] == row["delivered_at"] == row["cancelled_at"] == ""
    assert exported[1]["name"] == "王大明"


def test_orders_export_csv_starts_with_a_bom_and_reads_back_chinese_intact(shop):
    share = shop.open().share("tea-longjing", quantity=2)
    tricky = {**XIAOHONG["address"], "detail": '科技园南区 8 栋, "海景" 1201'}
    orders_made = [
        shop.order(share, "o_xiaohong"),
        shop.order(share, "o_daming", name="王大明", address=tricky),
    ]

    result = shop.cli("orders", "export", "--format", "csv", binary=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"\xef\xbb\xbf")
    reader = csv.DictReader(io.StringIO(result.stdout.decode("utf-8-sig"), newline=""))
    assert set(reader.fieldnames) >= CONTRACT_ORDER_FIELDS
    rows = list(reader)
    assert [r["order_no"] for r in rows] == [o.order_no for o in orders_made]
    assert [r["name"] for r in rows] == ["张小红", "王大明"]
    assert rows[0]["address"] == "广东省深圳市南山区科技园南区 8 栋 1201"
    assert rows[1]["address"] == '广东省深圳市南山区科技园南区 8 栋, "海景" 1201'


def test_orders_export_csv_never_hands_excel_a_formula(shop):
    share = shop.open().share("tea-longjing", quantity=3)
    hyperlink = '=HYPERLINK("https://evil.example","点我")'
    shop.order(share, "o_a", name="=cmd|' /C calc'!A0")
    shop.order(share, "o_b", name="@SUM(1+1)", address={**XIAOHONG["address"], "detail": hyperlink})
    shop.order(share, "o_c", name="-2+3", address={**XIAOHONG["address"], "detail": "\t+1 号"})
    result = shop.cli("orders", "export", "--format", "csv", binary=True)
    rows = list(csv.DictReader(io.StringIO(result.stdout.decode("utf-8-sig"), newline="")))
    assert [r["name"] for r in rows] == ["'=cmd|' /C calc'!A0", "'@SUM(1+1)", "'-2+3"]
    assert rows[1]["address_detail"] == "'" + hyperlink
    assert rows[2]["address_detail"] == "'\t+1 号"
    for row in rows:
        assert row["phone"] == "+8613800138000", "E.164, as every export writes phones"
        cells = [v for k, v in row.items() if k != "phone"]  # a checked mobile runs nothing
        assert not [v for v in cells if v[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert shop.cli_json("orders", "export")[0]["name"] == "=cmd|' /C calc'!A0", "JSON is as typed"


@BOTH_DATABASES
def test_the_export_has_what_a_shipper_needs(bot):
    token = share_in_chat(bot)
    claim(bot, browser(bot, "o_friend"), token)
    path = bot.config.path
    assert path is None  # built in memory: write one for the CLI
    cfg = bot.tmp_config()
    out = subprocess.run(
        [sys.executable, "-m", "bot", "orders", "export", "--format", "json", "--config", cfg],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (row,) = json.loads(out.stdout)
    assert row["phone"] == "+8613800138000" and row["name"] == "张小红"
    assert row["address"].startswith("广东省深圳市南山区") and row["gift_id"] == "tea-longjing"
    assert row["status"] == "placed"
    assert f"{row['delivery_date']} {row['delivery_slot']}" == first_slot(bot)
    start, end = (dt.datetime.fromisoformat(t) for t in row["delivery_time"].split("/"))
    assert start.utcoffset() == end.utcoffset() == dt.timedelta(hours=8)  # Asia/Shanghai
    assert f"{start:%Y-%m-%d %H:%M}-{end:%H:%M}" == first_slot(bot)


def test_orders_ship_marks_an_order_shipped_once(shop):
    share = shop.open().share("coffee", quantity=2)
    shipped = shop.order(share, "o_xiaohong")
    waiting = shop.order(share, "o_daming")

    assert lines(shop.cli("orders", "ship", shipped.order_no, "--no-tracking")) == [
        f"{shipped.order_no} shipped"
    ]

    status = {row["order_no"]: row for row in shop.cli_json("orders", "export")}
    assert status[shipped.order_no]["status"] == "shipped"
    assert status[waiting.order_no]["status"] == "placed"
    placed = shop.cli_json("orders", "export", "--status", "placed")
    assert [row["order_no"] for row in placed] == [waiting.order_no]

    # The same again changes nothing (a shipped order's carrier and tracking may be corrected).
    assert lines(shop.cli("orders", "ship", shipped.order_no, "--no-tracking")) == [
        f"{shipped.order_no} unchanged"
    ]


def test_shipping_an_unknown_order_exits_1(shop):
    shop.open()
    result = shop.cli("orders", "ship", "G000000-XXXXX", "--carrier", "顺丰")
    assert result.returncode == 1
    assert "G000000-XXXXX" in result.stderr


# -- outbox ---------------------------------------------------------------------------


def test_outbox_list_shows_the_queued_sms_and_wechat_notice(shop):
    order = shop.order(shop.open().share("mooncake"), "o_xiaohong")

    rows = shop.cli_json("outbox", "list")

    assert {(r["kind"], r["key"], r["status"]) for r in rows} == {
        ("sms", f"sms:order:{order.order_no}", "pending"),
        ("wechat_text", f"notice:claimed:{order.order_no}", "pending"),
    }
    assert shop.cli_json("outbox", "list", "--status", "dead") == []


def test_outbox_retry_puts_a_dead_row_back_in_line(shop):
    order = shop.order(shop.open().share("mooncake"), "o_xiaohong")
    sms = Outbox.get(Outbox.key == f"sms:order:{order.order_no}")
    Outbox.update(status="dead", attempts=8, last_error="SmsError: quota").where(
        Outbox.id == sms.id
    ).execute()
    assert [r["id"] for r in shop.cli_json("outbox", "list", "--status", "dead")] == [sms.id]

    assert lines(shop.cli("outbox", "retry", str(sms.id))) == [f"outbox row {sms.id} queued again"]

    row = next(r for r in shop.cli_json("outbox", "list") if r["id"] == sms.id)
    assert (row["status"], row["attempts"]) == ("pending", 0)


def test_outbox_retry_of_an_unknown_or_sent_row_exits_1(shop):
    order = shop.order(shop.open().share("mooncake"), "o_xiaohong")
    notice = Outbox.get(Outbox.key == f"notice:claimed:{order.order_no}")
    Outbox.update(status="sent").where(Outbox.id == notice.id).execute()

    unknown = shop.cli("outbox", "retry", "9999")
    assert unknown.returncode == 1
    assert "9999" in unknown.stderr

    sent = shop.cli("outbox", "retry", str(notice.id))
    assert sent.returncode == 1
    assert Outbox.get_by_id(notice.id).status == "sent"


# -- menu -----------------------------------------------------------------------------


@pytest.fixture
def fake_wechat(shop):
    with FakeWeChat() as fake:
        shop.raw = merge(
            shop.raw, {"wechat": {"api_base": fake.url, "app_id": APP_ID, "app_secret": APP_SECRET}}
        )
        shop.save()
        yield fake


def test_menu_push_creates_the_menu_with_the_three_keys(shop, fake_wechat):
    result = shop.cli("menu", "push")

    assert result.returncode == 0, result.stderr
    (menu,) = fake_wechat.menus  # the fake refuses \uXXXX escapes of Chinese (40033)
    assert [b["key"] for b in menu["button"]] == list(MENU_KEYS)
    assert [b["name"] for b in menu["button"]] == ["送礼物", "我送出的", "我收到的"]
    assert "送礼物" in result.stdout


def test_menu_push_refused_by_wechat_exits_1_with_the_error(shop, fake_wechat):
    fake_wechat.fail_next("/cgi-bin/menu/create", 40018)

    result = shop.cli("menu", "push")

    assert result.returncode == 1
    assert "40018" in result.stderr
    assert fake_wechat.menus == []


# -- serve ----------------------------------------------------------------------------


def test_serve_answers_healthz_and_stops_promptly_on_sigterm_and_never_logs_a_secret(shop):
    port = free_port()
    shop.raw = merge(shop.raw, {"server": {"port": port, "public_url": f"http://127.0.0.1:{port}"}})
    shop.save()
    log = (shop.folder / "serve.log").open("wb")
    secrets = {
        "GIFTBOT_COOKIE_SECRET": "cookie-secret-from-the-environment-0123",
        "GIFTBOT_WECHAT_TOKEN": "TokenFromTheEnv0123",
        "GIFTBOT_WECHAT_APP_SECRET": "app-secret-from-the-environment",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--config", str(shop.path)],
        cwd=shop.folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **secrets},
    )
    browser = requests.Session()  # keeps its connection open, as a browser would
    try:
        started = time.monotonic()
        status = None
        while status != 200 and time.monotonic() - started < 15 and server.poll() is None:
            try:
                status = browser.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
            except (requests.ConnectionError, requests.Timeout):  # the port is bound before
                time.sleep(0.1)  # the bot starts: a request may wait for its start-up
        served = (shop.folder / "serve.log").read_text(errors="replace")
        assert status == 200, served
        assert time.monotonic() - started < 10

        stopping = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
        assert time.monotonic() - stopping < 5
        served = (shop.folder / "serve.log").read_text(errors="replace")
        assert "listening" in served and not [v for v in secrets.values() if v in served]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        browser.close()
        log.close()


def test_serve_on_a_busy_port_says_which_and_how_to_choose_another_exit_2(shop):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    shop.raw = merge(shop.raw, {"server": {"port": port, "public_url": f"http://127.0.0.1:{port}"}})
    shop.save()
    try:
        result = shop.cli("serve")
    finally:
        taken.close()
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"cannot serve: port {port} on 127.0.0.1 is already in use")
    # The hint serves this very config: without it `make run` would serve the example.
    assert f"make run CONFIG={shop.path} PORT=" in line and "[server] port" in line
    assert f"serve --config {shop.path} --port " in line
    assert result.stdout == ""


def test_serve_port_moves_the_server_and_a_loopback_public_url_with_it(shop):
    port = free_port()
    served = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--config", str(shop.path), "--port", str(port)],
        cwd=shop.folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert wait_healthy(port, served)
        # The card's link names the port served: config.example.toml's sandbox is on.
        s = requests.Session()
        s.get(f"http://127.0.0.1:{port}/dev", timeout=5)
        reply = s.post(
            f"http://127.0.0.1:{port}/dev/send",
            json={"openid": "dev-giver", "kind": "text", "text": "1"},
            headers={"X-XSRFToken": s.cookies["_xsrf"]},
            timeout=10,
        ).json()["reply"]
        assert reply["url"].startswith(f"http://127.0.0.1:{port}/gifts/")
    finally:
        served.send_signal(signal.SIGTERM)
        out = served.communicate(timeout=10)[0]
    assert f"url=http://127.0.0.1:{port}" in out


def test_serve_warns_when_a_loopback_public_url_names_another_port(shop):
    port = free_port()
    public = {
        "server": {"port": port, "sandbox": False,  # public_url stays http://127.0.0.1:8080
                   "cookie_secret": "k3Jx9-QmT2vL8sWn4pRz7yBc1dFh6gAe-cli"},
        "wechat": {"token": "Qm7Tz2Lx9Vn4Pc8R", "app_secret": "3f9a7c2e8b1d4f6a0c5e9b7d2a4f8c1e"},
    }  # fmt: skip
    shop.raw = merge(shop.raw, public)
    shop.save()
    served = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--config", str(shop.path)],
        cwd=shop.folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert wait_healthy(port, served)
    finally:
        served.send_signal(signal.SIGTERM)
        out = served.communicate(timeout=10)[0]
    (warning,) = [json.loads(line) for line in out.splitlines() if "public_url" in line]
    assert warning["level"] == "warning"
    assert (
        f"server.port is {port} but server.public_url (http://127.0.0.1:8080)" in (warning["event"])
    )


def test_a_started_process_keeps_the_collector_off_its_start_up_heap():
    """`serve` and `worker` settle the heap once started (bot/app.py, settle_heap): what
    start-up made is frozen out of the collector's walks, and young objects are collected
    after YOUNG_THRESHOLD allocations, not Python's 700. Run in a process of its own: the
    test process keeps Python's defaults."""
    probe = (
        "import gc, json; from bot.app import settle_heap, YOUNG_THRESHOLD, OLDER_THRESHOLDS\n"
        "before = gc.get_threshold(); settle_heap()\n"
        "print(json.dumps([before, gc.get_threshold(), [YOUNG_THRESHOLD, *OLDER_THRESHOLDS],"
        " gc.get_freeze_count()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    before, after, chosen, frozen = json.loads(out)
    assert before == [700, 10, 10]  # Python's own
    assert after == chosen and chosen[0] >= 10_000
    assert frozen > 10_000  # modules, templates, the URL table: out of the collector's walks


def test_serve_help_names_every_option(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--help"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0
    for option in ("--config", "--port", "--workers", "-h, --help"):
        assert option in result.stdout
    assert "make run PORT=" in result.stdout


def wait_healthy(port: int, process: subprocess.Popen, seconds: float = 15) -> bool:
    started = time.monotonic()
    while time.monotonic() - started < seconds and process.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return True
        except requests.ConnectionError:
            time.sleep(0.1)
    return False


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_run_passes_port_to_serve():
    said = subprocess.run(
        ["make", "-n", "run", "PORT=8093"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert "-m bot serve --config config.example.toml --port 8093" in said
    plain = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "--port" not in plain


def test_serve_and_worker_run_on_uvloop_and_close_their_async_generators():
    closed = []

    async def ticking():
        try:
            while True:
                yield
        finally:
            closed.append(True)  # what bot/outgoing/http.py's sessions rely on at the end

    async def main():
        ticks = ticking()
        await ticks.__anext__()
        return type(asyncio.get_running_loop())

    assert run_loop(main()) is uvloop.Loop
    assert closed == [True]
