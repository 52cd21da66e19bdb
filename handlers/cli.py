"""The command line: `python -m bot COMMAND --config PATH`.

    serve [--workers N]          the bot: callback, pages, outbox worker (N processes, one port)
    worker                       only the background work: outbox and expiry (a separate deployment)
    catalogue sync               make the gifts table match [[gifts]]
    catalogue list [--format json|table]
    menu push                    create the custom menu through the WeChat API
    orders export --format json|csv [--status placed|shipped]
    orders ship ORDER_NO
    outbox list [--status pending|sent|dead] [--format json|table]
    outbox retry ID

Every verb returns an exit code: 0 done, 1 failed, 2 bad usage or config.
Output meant for scripts (`--format json`, csv) is plain; tables are for people.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
import unicodedata
from pathlib import Path

from bot import catalogue, logs, orders, outbox
from bot.app import Services
from bot.config import Config, ConfigError, load
from bot.forms.order import OrderAnswers
from bot.wechat_api import WeChatApi, WeChatError
from storage import db as storage
from storage.models import utcnow
from storage.runner import Runner

DEFAULT_CONFIG = "config.toml"
EXPORT_FIELDS = [
    "order_no", "status", "created_at", "gift_id", "gift_name", "variant", "name", "phone",
    "address", "region", "address_detail", "delivery_time", "delivery_date", "delivery_slot",
    "channel", "share_token", "shipped_at",
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"config error: {exc.key}: {exc.reason}", file=sys.stderr)
        return 2
    logs.setup(json_lines=not config.server.sandbox)
    return args.run(config, args)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m bot", description="gift-bot")
    top.add_argument("--config", default=DEFAULT_CONFIG, type=Path, help="config file (TOML)")
    verbs = top.add_subparsers(required=True, metavar="COMMAND")

    def verb(name, run, help, parent=verbs):
        p = parent.add_parser(name, help=help)
        p.add_argument("--config", default=argparse.SUPPRESS, type=Path, help=argparse.SUPPRESS)
        p.set_defaults(run=run)
        return p

    served = verb("serve", serve, "run the bot: the callback, the pages, the background work")
    served.add_argument(
        "--workers",
        type=positive,
        default=1,
        metavar="N",
        help="processes on the one port (default 1; more than 1 wants PostgreSQL)",
    )
    verb("worker", worker, "run only the outbox worker")
    cat = verbs.add_parser("catalogue", help="the gift catalogue").add_subparsers(required=True)
    verb("sync", catalogue_sync, "sync gifts from the config", cat)
    verb("list", catalogue_list, "list gifts", cat).add_argument(
        "--format", choices=["json", "table"], default="table"
    )
    menu = verbs.add_parser("menu", help="the custom menu").add_subparsers(required=True)
    verb("push", menu_push, "create the menu through the WeChat API", menu)
    ords = verbs.add_parser("orders", help="orders to ship").add_subparsers(required=True)
    export = verb("export", orders_export, "print orders", ords)
    export.add_argument("--format", choices=["json", "csv"], default="json")
    export.add_argument("--status", choices=["placed", "shipped"])
    verb("ship", orders_ship, "mark an order shipped", ords).add_argument("order_no")
    box = verbs.add_parser("outbox", help="outside calls waiting or failed").add_subparsers(
        required=True
    )
    listing = verb("list", outbox_list, "list outbox rows", box)
    listing.add_argument("--status", choices=["pending", "sent", "dead"])
    listing.add_argument("--format", choices=["json", "table"], default="table")
    verb("retry", outbox_retry, "send a dead row again", box).add_argument("id", type=int)
    return top


def positive(text: str) -> int:
    if not text.isdecimal() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 64, not {text!r}")
    return int(text)


def open_db(config: Config) -> None:
    storage.connect(config.database.url)
    storage.migrate()


def serve(config: Config, args) -> int:
    if args.workers > 1:
        from handlers.workers import serve_workers

        return serve_workers(config, args.workers)
    from handlers.app import serve as run_server

    asyncio.run(run_server(Services.start(config)))
    return 0


def worker(config: Config, args) -> int:
    services = Services.start(config, sync=False)
    stop = asyncio.Event()

    async def run() -> None:
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await services.background(stop)

    asyncio.run(run())
    return 0


def catalogue_sync(config: Config, args) -> int:
    open_db(config)
    for line in catalogue.sync(config.gifts).lines():
        print(line)
    return 0


def catalogue_list(config: Config, args) -> int:
    open_db(config)
    rows = catalogue.listing(utcnow())
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print_table(rows, ["id", "name", "price", "stock", "reserved", "claimed", "variants"])
    return 0


def menu_push(config: Config, args) -> int:
    open_db(config)  # the access token is kept in the database, shared with the server
    try:
        asyncio.run(WeChatApi(config.wechat, Runner(1)).create_menu(config.menu))
    except WeChatError as exc:
        print(f"menu push failed: {exc}", file=sys.stderr)
        return 1
    print(f"menu pushed: {', '.join(b.name for b in config.menu.button)}")
    return 0


def export_row(order, timezone: str) -> dict:
    slot = OrderAnswers.from_order(order, timezone).delivery
    return {
        "order_no": order.order_no,
        "status": order.status,
        "created_at": order.created_at.isoformat(timespec="seconds") + "Z",
        "gift_id": order.gift_id,
        "gift_name": order.gift.name,
        "variant": order.variant,
        "name": order.name,
        "phone": order.phone,
        "address": order.address,
        "region": order.region,
        "address_detail": order.address_detail,
        "delivery_time": slot.key,
        "delivery_date": slot.date.isoformat(),
        "delivery_slot": slot.window,
        "channel": order.channel,
        "share_token": order.share.token,
        "shipped_at": order.shipped_at.isoformat(timespec="seconds") + "Z"
        if order.shipped_at
        else "",
    }


def orders_export(config: Config, args) -> int:
    open_db(config)
    rows = [export_row(o, config.delivery.timezone) for o in orders.for_export(args.status)]
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: csv_cell(k, v) for k, v in row.items()} for row in rows)
    # A BOM, so Excel opens the UTF-8 (Chinese names and addresses) cleanly.
    sys.stdout.buffer.write(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))
    return 0


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(column: str, value):
    """A cell a spreadsheet shows as text: what a recipient typed must never run as a formula.

    Phones lose their `+` (Excel would read +86… as a formula, and couriers dial the national
    number); any other cell starting like a formula gets a leading apostrophe.
    """
    if not isinstance(value, str):
        return value
    if column == "phone":
        return value.removeprefix("+86") if value.startswith("+86") else value.lstrip("+")
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def orders_ship(config: Config, args) -> int:
    open_db(config)
    order, shipped = orders.ship(args.order_no, utcnow())
    if order is None:
        print(f"no order {args.order_no}", file=sys.stderr)
        return 1
    print(f"{order.order_no} {'shipped' if shipped else 'was already ' + order.status}")
    return 0


def outbox_list(config: Config, args) -> int:
    open_db(config)
    rows = outbox.listing(args.status)
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print_table(
            rows, ["id", "kind", "key", "status", "attempts", "next_attempt_at", "last_error"]
        )
    return 0


def outbox_retry(config: Config, args) -> int:
    open_db(config)
    if not outbox.retry(args.id):
        print(f"no outbox row {args.id} waiting or dead", file=sys.stderr)
        return 1
    print(f"outbox row {args.id} queued again")
    return 0


def print_table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [columns, *([str(r.get(c, "")) for c in columns] for r in rows)]
    widths = [max(width(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print("  ".join(v + " " * (w - width(v)) for v, w in zip(row, widths, strict=True)))


def width(text: str) -> int:
    """Columns on a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
