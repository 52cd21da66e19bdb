"""`python -m bot report` (issue 26): a campaign played on the real server — shares claimed in
chat and on the web, shipped, delivered and thanked, one revoked, one expired, a draw — then
the report as JSON and as one HTML page, which Chromium opens from disk with every request
that would leave the file refused; its charts are visible and photographed
(test-artifacts/screenshots/report-*.png). In wechatpay mode its money is the books'."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import sys

import pytest
from browsing import CHROMIUM, SHOTS
from conftest import ROOT
from helpers import BOTH_DATABASES, browser, confirm_card, fill, say, share_in_chat
from paying import pay_for, share_to_pay

from bot.money import paybooks
from storage.models import Order, Share


def cli(bot, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args, "--config", bot.tmp_config()],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=120,
    )  # fmt: skip


def campaign(bot) -> dict:
    """Four shares and a draw over four days; what the report must find."""
    gift = share_in_chat(bot, number="1", quantity="3")
    for friend in ("o_f1", "o_f2"):
        fill(bot, friend, gift)
        assert "订单号" in say(bot, friend, "确认")
    visitor = f"o_f3_{secrets.token_hex(4)}"  # the server remembers visits per process
    assert browser(bot, visitor).get(f"{bot.url}/claim/{gift}", timeout=10).status_code == 200
    say(bot, "o_f2", "谢谢 很喜欢！")
    share_in_chat(bot, number="2")  # expires
    bot.clock.offset += dt.timedelta(hours=bot.config.shares.expire_hours, minutes=5)
    bot.run(bot.services.sweep_once())
    share_in_chat(bot, number="3", quantity="2")
    say(bot, "o_giver", "我送出的")
    assert "已撤回" in say(bot, "o_giver", "撤回 1")
    for text in ("1", "抽奖", "1", "跳过", "跳过"):
        say(bot, "o_giver", text)
    draw = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    for friend in ("o_d1", "o_d2"):
        say(bot, friend, f"领取 {draw}")
    bot.clock.offset += dt.timedelta(hours=bot.config.shares.draw_hours, minutes=5)
    bot.run(bot.services.sweep_once())
    first, second = (o.order_no for o in Order.select().order_by(Order.id))
    for args in (("ship", first, "--carrier", "顺丰", "--tracking", "SF1"), ("deliver", first)):
        assert cli(bot, "orders", *args).returncode == 0
    return {"gift": gift, "draw": draw, "orders": (first, second)}


@BOTH_DATABASES
def test_the_report_counts_the_funnel_days_gifts_and_draws(bot):
    campaign(bot)

    ran = cli(bot, "report", "--format", "json")

    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["funnel"] == {
        "shares": 4, "units": 3 + 1 + 2 + 1, "opened": 3 + 2, "claimed": 2, "ordered": 2,
        "shipped": 1, "delivered": 1, "thanked": 1,
    }  # fmt: skip
    assert report["money"] is None  # free mode: no money moved
    gifts = {g["id"]: g for g in report["gifts"]}
    assert gifts["tea-longjing"] | {"name": None} == {
        "id": "tea-longjing", "name": None, "shared": 4, "claimed": 2, "expired": 1,
        "revoked": 0, "claim_rate": 0.5,
    }  # fmt: skip
    assert (gifts["mooncake"]["expired"], gifts["flowers"]["revoked"]) == (1, 2)
    assert report["draws"] | {"by_draw": None} == {
        "draws": 1, "entrants": 2, "winners": 1, "claimed": 0, "by_draw": None,
    }  # fmt: skip
    days = report["days"]
    assert sum(d["shares"] for d in days) == 4 and sum(d["claims"] for d in days) == 2
    assert sum(d["shipped"] for d in days) == 1
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)
    assert len(days) >= 3  # the campaign ran over its expiry and its draw
    assert report["window"]["timezone"] == "Asia/Shanghai"

    first_day = days[0]["date"]
    only = json.loads(cli(bot, "report", "--since", first_day, "--until", first_day,
                          "--format", "json").stdout)  # fmt: skip
    assert only["funnel"]["shares"] == 2 and [d["date"] for d in only["days"]] == [first_day]
    later = json.loads(cli(bot, "report", "--since", "2099-01-01", "--format", "json").stdout)
    assert later["funnel"]["shares"] == 0 and later["gifts"] == []


def test_report_needs_an_output_and_real_days(bot):
    for args, says in (
        ((), "one of the arguments --out --format is required"),
        (("--since", "2026-13-01", "--format", "json"), "must be a day like 2026-12-01"),
        (("--since", "2026-12-02", "--until", "2026-12-01", "--format", "json"), "after --until"),
    ):
        ran = cli(bot, "report", *args)
        assert ran.returncode == 2 and says in ran.stderr, ran.stderr
        assert "usage: python -m bot report" in ran.stderr


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not installed at /usr/bin/chromium")
def test_the_report_page_stands_alone_with_its_charts(bot, chromium, tmp_path):
    campaign(bot)
    page_file = tmp_path / "report.html"

    ran = cli(bot, "report", "--out", str(page_file))

    assert ran.returncode == 0 and ran.stdout.strip() == f"wrote {page_file}", ran.stderr
    left: list[str] = []

    def only_the_file(route):
        if route.request.url.startswith("file://"):
            return route.continue_()
        left.append(route.request.url)
        return route.abort()

    for name, size in (("desktop", (1280, 800)), ("phone", (390, 844))):
        context = chromium.new_context(viewport={"width": size[0], "height": size[1]})
        context.route("**/*", only_the_file)
        page = context.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        charts = page.locator("section .chart svg")
        assert charts.count() >= 4  # funnel, days, gifts, draws (money only in wechatpay mode)
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box and box["width"] > 200 and box["height"] > 100, (i, box)
            assert charts.nth(i).locator("rect, path").count() > 3, "the chart has its marks"
        text = page.inner_text("main")
        assert "从送出到感谢" in text and "明前龙井礼盒" in text and "50%" in text
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the {name} page scrolls sideways by {overflow} px"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"report-{name}.png"), full_page=True)
        context.close()
    assert left == [], "no request leaves the file"
    html = page_file.read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html


@BOTH_DATABASES
def test_in_wechatpay_mode_the_reports_money_is_the_books(pay_bot):
    bot, pay = pay_bot
    pay_for(bot, pay, share_to_pay(bot, quantity="2"))
    pay_for(bot, pay, share_to_pay(bot, quantity="1", number="2"))
    token = Share.select().order_by(Share.id).first().token
    fill(bot, "o_friend", token)
    say(bot, "o_friend", "确认")
    say(bot, "o_giver", "我送出的")
    say(bot, "o_giver", "撤回 2")  # the first share: one unit refunded
    bot.drain()

    money = json.loads(cli(bot, "report", "--format", "json").stdout)["money"]

    books = paybooks.balance()["total"]
    assert money == {
        "paid_fen": books["paid"], "refunded_fen": books["refunded"],
        "net_fen": books["paid"] - books["refunded"], "refunds_done_fen": books["refunds_done"],
    }  # fmt: skip
    assert money["paid_fen"] > money["refunded_fen"] > 0
