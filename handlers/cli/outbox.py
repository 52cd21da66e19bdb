"""`outbox list [--status S] [--format json]`, `outbox retry ID`: the outside calls waiting,
sent, dead or skipped, and sending a dead or skipped one again."""

from __future__ import annotations

import sys

from bot.config import Config
from bot.outgoing import outbox_rows
from handlers.cli.common import for_people, in_zone, open_db, show, stamp, zone_of

STATUSES = ["pending", "sent", "dead", "skipped"]
COLUMNS = ["id", "kind", "key", "status", "sent_by", "attempts", "next_attempt_at", "last_error"]


def verbs(verb, top) -> None:
    box = top.add_parser("outbox", help="outside calls waiting, sent, dead or skipped")
    box = box.add_subparsers(required=True)
    listing = verb("list", list_rows, "list outbox rows", box)
    listing.add_argument(
        "--status",
        choices=STATUSES,
        help="pending: waiting for its (next) attempt; sent; dead: failed for good; "
        "skipped: not allowed (the reason in last_error)",
    )
    listing.add_argument("--format", choices=["json", "table"], default="table")
    verb("retry", retry, "send a dead or skipped row again (a pending one now)", box).add_argument(
        "id", type=int
    )


def list_rows(config: Config, args) -> int:
    open_db(config)
    zone = zone_of(config)
    show(in_zone(outbox_rows.listing(args.status), zone), COLUMNS, args.format, "outbox", zone)
    return 0


def retry(config: Config, args) -> int:
    open_db(config)
    was, row = outbox_rows.retry(args.id)
    if was is None:
        print(f"no outbox row {args.id}", file=sys.stderr)
        return 1
    if was == "sent":
        when = for_people("sent_at", stamp(row.sent_at, zone_of(config)), zone_of(config))
        when = f" {when}" if when else ""
        print(f"outbox row {args.id} was sent{when}: it is not sent again", file=sys.stderr)
        return 1
    if was == "pending":
        print(f"outbox row {args.id} was waiting for its next attempt: it goes now")
        return 0
    print(f"outbox row {args.id} queued again")
    return 0
