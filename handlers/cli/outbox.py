"""`outbox list [--status S] [--format json]`, `outbox retry ID`: the outside calls waiting,
sent, dead or skipped, and sending a dead or skipped one again."""

from __future__ import annotations

import sys

from bot.config import Config
from bot.outgoing import outbox
from handlers.cli.common import open_db, show

COLUMNS = ["id", "kind", "key", "status", "sent_by", "attempts", "next_attempt_at", "last_error"]


def verbs(verb, top) -> None:
    box = top.add_parser("outbox", help="outside calls waiting, sent, dead or skipped")
    box = box.add_subparsers(required=True)
    listing = verb("list", list_rows, "list outbox rows", box)
    listing.add_argument("--status", choices=["pending", "sent", "dead", "skipped"])
    listing.add_argument("--format", choices=["json", "table"], default="table")
    verb("retry", retry, "send a dead or skipped row again", box).add_argument("id", type=int)


def list_rows(config: Config, args) -> int:
    open_db(config)
    show(outbox.listing(args.status), COLUMNS, args.format, title="outbox")
    return 0


def retry(config: Config, args) -> int:
    open_db(config)
    if not outbox.retry(args.id):
        print(f"no outbox row {args.id} waiting, dead or skipped", file=sys.stderr)
        return 1
    print(f"outbox row {args.id} queued again")
    return 0
