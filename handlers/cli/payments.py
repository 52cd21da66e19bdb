"""`payments list [--format json]`: every payment attempt and refund with its state, and the
books (paid = claimed + refunded + still open); `payments balance [--format json]`: the books
per share and overall. Exits 1 when they do not balance.

Amounts are integer fen in JSON, under names ending `_fen`; a table shows them in yuan."""

from __future__ import annotations

import json

from bot.config import Config
from bot.money import paybooks
from bot.render import money
from handlers.cli.common import in_zone, open_db, show, zone_of

COLUMNS = ["kind", "number", "share_id", "amount_fen", "state", "reason", "created_at", "error"]
BALANCE_COLUMNS = ["share_id", "payment", "paid_fen", "claimed_fen", "refunded_fen", "open_fen",
                   "refunds_done_fen", "balanced"]  # fmt: skip
AMOUNTS = ("amount", "paid", "claimed", "refunded", "open", "refunds_done")  # paybooks', in fen


def verbs(verb, top) -> None:
    money_verbs = top.add_parser(
        "payments", help="payments and refunds ([payments] mode wechatpay)"
    )
    money_verbs = money_verbs.add_subparsers(required=True)
    listing = verb(
        "list", list_payments, "every payment attempt and refund, with its state", money_verbs
    )
    listing.add_argument("--format", choices=["json", "table"], default="table")
    books = verb(
        "balance", balance, "paid = claimed + refunded + open, per share and overall", money_verbs
    )
    books.add_argument("--format", choices=["json", "table"], default="table")


def in_fen(row: dict) -> dict:
    """A row of the books with each amount under a name that says it is fen."""
    return {(f"{k}_fen" if k in AMOUNTS else k): v for k, v in row.items()}


def list_payments(config: Config, args) -> int:
    open_db(config)
    zone = zone_of(config)
    rows = in_zone([in_fen(r) for r in paybooks.listing()], zone)
    show(rows, COLUMNS, args.format, "payments", zone)
    if args.format != "json":
        _total(paybooks.balance()["total"])
    return 0


def balance(config: Config, args) -> int:
    open_db(config)
    books = paybooks.balance()
    shown = {"shares": [in_fen(r) for r in books["shares"]], "total": in_fen(books["total"])}
    if args.format == "json":
        print(json.dumps(shown, ensure_ascii=False, indent=2))
    else:
        show(shown["shares"], BALANCE_COLUMNS)
        _total(books["total"])
    return 0 if books["total"]["balanced"] else 1


def _total(total: dict) -> None:
    print(
        f"paid {money(total['paid'])} = claimed {money(total['claimed'])} "
        f"+ refunded {money(total['refunded'])} + open {money(total['open'])} "
        f"(refunds done {money(total['refunds_done'])}): "
        + ("balanced" if total["balanced"] else "NOT BALANCED")
    )
