"""`shares list [--status S]`, `users show OPENID`: who gave what, and one person's shares
and orders, for support."""

from __future__ import annotations

import sys

from bot.config import Config
from bot.gifting import shares, support
from handlers.cli.common import for_people, in_zone, open_db, show, zone_of
from storage.models import utcnow

SHARE_COLUMNS = ["id", "token", "giver", "gift", "quantity", "claimed", "status", "expires_at"]
ORDER_COLUMNS = ["order_no", "gift", "status", "created_at", "carrier", "tracking"]
# A share's states (bot/gifting/life.py), as `--help` and the README explain them.
STATUS_HELP = (
    "unpaid: waiting for its payment; open: may be claimed; drawing: a draw before its draw; "
    "drawn: its winners may claim; claimed: every unit claimed; expired: over with units "
    "unclaimed; revoked: withdrawn by its giver; lapsed: its payment never came"
)


def verbs(verb, top) -> None:
    share = top.add_parser("shares", help="gifts given").add_subparsers(required=True)
    listing = verb("list", list_shares, "every share, newest first", share)
    listing.add_argument("--status", choices=list(shares.STATUSES), help=STATUS_HELP)
    listing.add_argument("--format", choices=["json", "table"], default="table")
    user = top.add_parser("users", help="the people using the bot").add_subparsers(required=True)
    person = verb("show", show_user, "a person's shares and orders, for support", user)
    person.add_argument("openid")
    person.add_argument("--format", choices=["json", "table"], default="table")


def list_shares(config: Config, args) -> int:
    open_db(config)
    zone = zone_of(config)
    rows = in_zone(shares.listing(utcnow(), args.status), zone)
    show(rows, SHARE_COLUMNS, args.format, "shares", zone)
    return 0


def show_user(config: Config, args) -> int:
    open_db(config)
    zone = zone_of(config)
    person = support.person(args.openid, utcnow())
    if person is None:
        print(f"no user {args.openid}", file=sys.stderr)
        return 1
    person = in_zone(person, zone)
    if args.format == "json":
        show(person, [], "json")
        return 0
    facts = {k: v for k, v in person.items() if k not in ("shares", "orders")}
    print("  ".join(f"{k}: {for_people(k, v, zone)}" for k, v in facts.items()))
    for title, rows, columns in (
        ("shares given", person["shares"], SHARE_COLUMNS),
        ("orders received", person["orders"], ORDER_COLUMNS),
    ):
        print(f"\n{title}:")  # piped, a table has no title: say which one follows
        show(rows, columns, zone=zone)
    return 0
