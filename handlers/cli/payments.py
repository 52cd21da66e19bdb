"""`payments list [--format json]`: every payment attempt and refund with its state, and the
books (paid = claimed + refunded + still open); `payments balance [--format json]`: the books
per share and overall. Exits 1 when they do not balance."""

from __future__ import annotations

import json

from bot.config import Config
from bot.money import paybooks
from handlers.cli.common import open_db, print_table, show

COLUMNS = ["kind", "number", "share_id", "amount", "state", "reason", "created_at", "error"]
BALANCE_COLUMNS = ["share_id", "payment", "paid", "claimed", "refunded", "open", "refunds_done",
                   "balanced"]  # fmt: skip


def verbs(verb, top) -> None:
    money = top.add_parser("payments", help="payments and refunds ([payments] mode wechatpay)")
    money = money.add_subparsers(required=True)
    listing = verb("list", list_payments, "every payment attempt and refund, with its state", money)
    listing.add_argument("--format", choices=["json", "table"], default="table")
    books = verb(
        "balance", balance, "paid = claimed + refunded + open, per share and overall", money
    )
    books.add_argument("--format", choices=["json", "table"], default="table")


def list_payments(config: Config, args) -> int:
    open_db(config)
    rows = paybooks.listing()
    show(rows, COLUMNS, args.format, title="payments")
    if args.format != "json":
        _total(paybooks.balance()["total"])
    return 0


def balance(config: Config, args) -> int:
    open_db(config)
    books = paybooks.balance()
    if args.format == "json":
        print(json.dumps(books, ensure_ascii=False, indent=2))
    else:
        print_table(books["shares"], BALANCE_COLUMNS)
        _total(books["total"])
    return 0 if books["total"]["balanced"] else 1


def _total(total: dict) -> None:
    print(
        f"paid {total['paid']} = claimed {total['claimed']} + refunded {total['refunded']} "
        f"+ open {total['open']} (refunds done {total['refunds_done']}): "
        + ("balanced" if total["balanced"] else "NOT BALANCED")
    )
