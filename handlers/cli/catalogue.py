"""`catalogue sync [--dry-run]`, `catalogue list`, `menu push`: the gifts and the menu."""

from __future__ import annotations

import asyncio
import sys

from bot.config import Config
from bot.gifting import catalogue
from bot.outgoing.wechat_api import WeChatApi, WeChatError
from handlers.cli.common import open_db, show
from storage.models import utcnow
from storage.runner import Runner

COLUMNS = ["id", "variant", "name", "price_fen", "stock", "reserved", "claimed"]


def verbs(verb, top) -> None:
    cat = top.add_parser("catalogue", help="the gift catalogue").add_subparsers(required=True)
    sync_verb = verb("sync", sync, "make the gifts table match [[gifts]] in the config", cat)
    sync_verb.add_argument(
        "--dry-run", action="store_true", help="say what would change, change nothing"
    )
    verb("list", list_gifts, "stock, reserved and claimed per gift and variant", cat).add_argument(
        "--format", choices=["json", "table"], default="table"
    )
    menu = top.add_parser("menu", help="the custom menu").add_subparsers(required=True)
    verb("push", menu_push, "create the menu through the WeChat API", menu)


def sync(config: Config, args) -> int:
    open_db(config)
    report = catalogue.sync(config.gifts, dry_run=args.dry_run)
    for line in report.lines():
        print(f"would have {line}" if args.dry_run and line != report.NOTHING else line)
    return 0


def list_gifts(config: Config, args) -> int:
    open_db(config)
    # Money in fen under a name that says so (a table shows it in yuan).
    gifts = [
        {(k if k != "price" else "price_fen"): v for k, v in g.items()}
        for g in catalogue.listing(utcnow())
    ]
    if args.format == "json":
        show(gifts, [], "json")
        return 0
    rows = []  # a gift's row, then one per variant claimed ("-": counted for the whole gift)
    for gift in gifts:
        rows.append({**gift, "variant": "-"})
        rows += [
            {**dict.fromkeys(COLUMNS, "-"), "id": gift["id"], "variant": name, "claimed": claimed}
            for name, claimed in gift["claimed_by_variant"].items()
        ]
    show(rows, COLUMNS, title="catalogue")
    return 0


def menu_push(config: Config, args) -> int:
    open_db(config)  # the access token is kept in the database, shared with the server
    try:
        asyncio.run(WeChatApi(config.wechat, Runner(1)).create_menu(config.menu))
    except WeChatError as exc:
        # errcode None: no answer, or none that made sense; say where it was asked.
        where = "WeChat refused it" if exc.errcode is not None else config.wechat.api_base
        print(f"menu push failed: {where}: {exc}", file=sys.stderr)
        return 1
    print(f"menu pushed: {', '.join(b.name for b in config.menu.button)}")
    return 0
