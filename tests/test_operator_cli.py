"""The command line's rough edges, as an operator met them (issue 26), each run for real in a
subprocess on the shop's own database: a closed pipe, a mistyped option, the outbox's words,
WeChat out of reach, wide lines, money, times, and what start-up refuses."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest
from conftest import PG_URL, ROOT, merge, pg_reachable
from helpers import free_port
from shop import lines

from handlers.cli import parser
from storage.models import Outbox

TRACEBACK = "Traceback"


def test_a_closed_pipe_ends_the_export_quietly(shop):
    shop.gift("tea-longjing")["stock"] = 200
    shop.save()
    shop.open()
    for giver in range(12):  # ~120 orders: more than a pipe holds, so the reader leaves first
        share = shop.share("tea-longjing", quantity=10, giver=f"o_giver{giver}")
        for n in range(10):
            shop.order(share, f"o_{giver}_{n}")
    export = subprocess.Popen(
        [sys.executable, "-m", "bot", "orders", "export", "--config", str(shop.path)],
        cwd=shop.folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert export.stdout.readline() == b"[\n"  # what `| head -1` reads, then it is gone
    export.stdout.close()
    errors = export.stderr.read().decode()
    assert export.wait(timeout=30) == 0
    assert errors == "", errors


def test_a_mistyped_option_shows_that_commands_usage(shop):
    result = shop.cli("orders", "ship", "G261202-7KQ3X", "--carrrier", "顺丰")
    assert result.returncode == 2 and result.stdout == ""
    usage, *_, error = result.stderr.splitlines()
    assert usage.startswith("usage: python -m bot orders ship")
    assert "--carrier" in result.stderr and "--no-tracking" in result.stderr
    assert error == "python -m bot orders ship: error: unrecognized arguments: --carrrier 顺丰"


def test_outbox_retry_says_what_became_of_each_row(shop):
    order = shop.order(shop.open().share("mooncake"), "o_xiaohong")
    sent = Outbox.get(Outbox.key == f"notice:claimed:{order.order_no}")
    at = dt.datetime(2026, 12, 3, 6, 5)
    Outbox.update(status="sent", sent_at=at).where(Outbox.id == sent.id).execute()
    waiting = Outbox.get(Outbox.key == f"sms:order:{order.order_no}")

    again = shop.cli("outbox", "retry", str(sent.id))
    now = shop.cli("outbox", "retry", str(waiting.id))
    nothing = shop.cli("outbox", "retry", "9999")

    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"outbox row {sent.id} was sent 2026-12-03 14:05: it is not sent again"
    )  # in the configured zone (+08:00)
    assert lines(now) == [f"outbox row {waiting.id} was waiting for its next attempt: it goes now"]
    assert nothing.returncode == 1 and nothing.stderr.strip() == "no outbox row 9999"
    assert Outbox.get_by_id(sent.id).status == "sent"


def test_menu_push_without_an_answer_names_where_it_asked_not_none(shop):
    closed = f"http://127.0.0.1:{free_port()}"
    shop.raw = merge(shop.raw, {"wechat": {"api_base": closed}})
    shop.save()
    result = shop.cli("menu", "push")
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if "menu push failed" in line]
    assert line.startswith(f"menu push failed: {closed}: network error")
    assert "None" not in result.stderr


def test_outbox_list_lines_fit_a_terminal_and_json_keeps_the_whole_error(shop):
    order = shop.order(shop.open().share("mooncake"), "o_xiaohong")
    error = "SmsError: isv.BUSINESS_LIMIT_CONTROL " + "天级流控 " * 60
    Outbox.update(status="dead", last_error=error).where(
        Outbox.key == f"sms:order:{order.order_no}"
    ).execute()

    table = lines(shop.cli("outbox", "list"))

    assert max(len(line) for line in table) <= 160, max(table, key=len)
    assert not [line for line in table if line != line.rstrip()], "no line is padded"
    assert [r["last_error"] for r in shop.cli_json("outbox", "list", "--status", "dead")] == [error]


def test_money_reads_in_yuan_and_json_keeps_fen(shop):
    shop.open()
    table = lines(shop.cli("catalogue", "list"))
    assert table[0].split()[:4] == ["id", "variant", "name", "price"]
    tea = next(line for line in table if line.startswith("tea-longjing"))
    price = shop.gift("tea-longjing")["price"]
    assert f"¥{price // 100}.{price % 100:02d}" in tea and f" {price} " not in tea
    listed = next(g for g in shop.cli_json("catalogue", "list") if g["id"] == "tea-longjing")
    assert listed["price_fen"] == price and "price" not in listed


def test_a_table_says_times_in_the_configured_zone_json_keeps_the_offset(shop):
    share = shop.open().share("mooncake")
    local = share.expires_at.replace(tzinfo=dt.UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    table = lines(shop.cli("shares", "list"))
    assert f"{local:%Y-%m-%d %H:%M}" in table[1]
    (row,) = shop.cli_json("shares", "list")
    assert row["expires_at"] == local.isoformat(timespec="seconds")
    assert row["expires_at"].endswith("+08:00")
    assert dt.datetime.fromisoformat(row["created_at"]).utcoffset() == dt.timedelta(hours=8)


def test_shares_list_help_and_the_readme_name_every_status(shop):
    shown = shop.cli("shares", "list", "--help").stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    statuses = ("unpaid", "open", "drawing", "drawn", "claimed", "expired", "revoked", "lapsed")
    documented = re.search(r"`shares list \[--status ([a-z\\|]+)\]", readme)  # \| in a table
    assert documented and documented.group(1).split("\\|") == list(statuses)
    for status in statuses:
        assert f"{status}:" in " ".join(shown.split()), status


def test_every_option_of_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Command line") : readme.index("## Configuration")]
    missing = []
    for path, command in commands(parser()):
        for action in command._actions:
            for option in action.option_strings:
                skip = ("--help", "--config")
                if option.startswith("--") and option not in skip and option not in section:
                    missing.append(f"{path} {option}")
    assert missing == []


def commands(top, path=""):
    for action in top._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            if hasattr(sub, "_actions"):
                yield f"{path} {name}".strip(), sub
                yield from commands(sub, f"{path} {name}".strip())


# -- what start-up refuses ---------------------------------------------------------------


def test_a_gift_picture_that_is_not_there_stops_start_up_naming_the_key(shop):
    shop.raw["gifts"][1]["image"] = "/static/gifts/tee.png"
    path = shop.folder / "config.toml"
    import tomli_w

    path.write_text(tomli_w.dumps(shop.raw), encoding="utf-8")
    for verb in (["serve"], ["catalogue", "list"]):
        result = shop.cli(*verb)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.splitlines() == [
            "config error: gifts[1].image: no file static/gifts/tee.png for /static/gifts/tee.png"
        ]


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://postgres@127.0.0.1:5432/giftbot_no_such_db", id="postgres"),
        pytest.param("postgresql://postgres:secret@127.0.0.1:1/test", id="postgres-down"),
        pytest.param("sqlite:////proc/giftbot/no.db", id="sqlite"),
    ],
)
def test_a_database_that_cannot_be_opened_is_one_line_exit_2(shop, url):
    if url.startswith("postgresql://postgres@") and not pg_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    shop.raw = merge(shop.raw, {"database": {"url": url}})
    path = shop.folder / "config.toml"
    import tomli_w

    path.write_text(tomli_w.dumps(shop.raw), encoding="utf-8")
    for verb in (["serve"], ["orders", "export"]):
        result = shop.cli(*verb)
        assert result.returncode == 2 and result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith("config error: database.url: cannot open "), line
        assert TRACEBACK not in result.stderr and "secret" not in line
