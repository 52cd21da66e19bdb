"""`orders export`, `orders ship ORDER_NO | --from FILE`, `orders deliver|cancel ORDER_NO`:
what shippers need, and moving an order forward (placed → shipped → delivered, or
placed/shipped → cancelled; a shipped order's carrier and tracking corrected)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.forms.order import OrderAnswers
from bot.gifting import fulfilment, orders
from bot.outgoing.notices import Notices
from bot.render import Renderer
from handlers.cli import shipping
from handlers.cli.common import csv_cell, open_db, show, stamp, zone_of
from storage import db as storage
from storage.models import utcnow

EXPORT_FIELDS = [
    "order_no", "status", "created_at", "gift_id", "gift_name", "swapped_from", "variant", "name", "phone",
    "address", "region", "address_detail", "delivery_time", "delivery_date", "delivery_slot",
    "channel", "share_token", "carrier", "tracking", "shipped_at", "delivered_at", "cancelled_at",
]  # fmt: skip


def verbs(verb, top) -> None:
    ords = top.add_parser("orders", help="orders to ship").add_subparsers(required=True)
    export = verb("export", export_orders, "print orders", ords)
    export.add_argument("--format", choices=["json", "csv"], default="json")
    export.add_argument("--status", choices=fulfilment.STATUSES)
    ship = verb(
        "ship", ship_orders,
        "mark an order shipped (the recipient is told), or correct a shipped order's carrier "
        "and tracking (the recipient is told once); --from ships every order of a CSV file",
        ords,
    )  # fmt: skip
    ship.add_argument("order_no", nargs="?", help="the order's number, e.g. G261202-7KQ3X")
    ship.add_argument(
        "--from",
        dest="file",
        type=Path,
        metavar="FILE",
        help="a courier's CSV with the header order_no,carrier,tracking (UTF-8, or GB18030 as "
        "Excel saves it): one line per row shipped, corrected, unchanged or failed; exit 1 "
        "when any failed",
    )
    ship.add_argument("--carrier", default="", help="e.g. 顺丰")
    ship.add_argument("--tracking", default="", help="the carrier's tracking number")
    ship.add_argument(
        "--no-tracking",
        action="store_true",
        help="ship without carrier and tracking number (refused without this)",
    )
    verb("deliver", move_verb("delivered"), "mark a shipped order delivered", ords).add_argument(
        "order_no"
    )
    verb(
        "cancel", move_verb("cancelled"), "cancel an order: its unit goes back to stock", ords
    ).add_argument("order_no")


def export_row(order, zone: ZoneInfo) -> dict:
    """Every field a shipper needs; every time in the configured zone, with its UTC offset."""
    slot = OrderAnswers.from_order(order, zone.key).delivery
    return {
        "order_no": order.order_no,
        "status": order.status,
        "created_at": stamp(order.created_at, zone),
        "gift_id": order.gift_id,
        "gift_name": order.gift.name,
        "swapped_from": order.swapped_from,  # the gift given, when the recipient took gift_id instead
        "variant": order.variant,
        "name": order.name,
        "phone": order.phone,  # E.164, as the order form checked it
        "address": order.address,
        "region": order.region,
        "address_detail": order.address_detail,
        # ISO 8601 interval in the delivery time zone: 2026-12-03T14:00:00+08:00/…18:00:00+08:00
        "delivery_time": f"{slot.start.isoformat()}/{slot.end.isoformat()}",
        "delivery_date": slot.date.isoformat(),
        "delivery_slot": slot.window,
        "channel": order.channel,
        "share_token": order.share.token,
        "carrier": order.carrier,
        "tracking": order.tracking,
        "shipped_at": stamp(order.shipped_at, zone),
        "delivered_at": stamp(order.delivered_at, zone),
        "cancelled_at": stamp(order.cancelled_at, zone),
    }


def export_orders(config: Config, args) -> int:
    open_db(config)
    zone = zone_of(config)
    rows = [export_row(o, zone) for o in orders.for_export(args.status)]
    if args.format == "json":
        show(rows, EXPORT_FIELDS, "json")
        return 0
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: csv_cell(k, v) for k, v in row.items()} for row in rows)
    # A BOM, so Excel opens the UTF-8 (Chinese names and addresses) cleanly.
    sys.stdout.buffer.write(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))
    return 0


def ship_orders(config: Config, args) -> int:
    if (args.file is None) == (args.order_no is None):
        args.parser.error("give one ORDER_NO, or --from FILE")
    if args.file is not None and (args.carrier or args.tracking):
        args.parser.error("--carrier and --tracking come from the file's columns with --from")
    if args.file is None and not (
        args.carrier.strip() or args.tracking.strip() or args.no_tracking
    ):
        args.parser.error("give --carrier and/or --tracking, or --no-tracking to ship without them")
    if args.file is not None:
        return ship_file(config, args.file, args.no_tracking)
    open_db(config)
    notices = Notices(config, Renderer(config))
    try:
        order, outcome = fulfilment.ship(
            notices, args.order_no, utcnow(), args.carrier, args.tracking, args.no_tracking
        )
    except fulfilment.NoSuchOrder:
        print(f"no order {args.order_no}", file=sys.stderr)
        return 1
    except (fulfilment.WrongStatus, fulfilment.BadShipping) as refused:
        print(f"{refused}", file=sys.stderr)
        return 1
    tracked = " ".join(v for v in (order.carrier, order.tracking) if v)
    print(
        f"{order.order_no} {outcome}" + (f": {tracked}" if outcome != "shipped" and tracked else "")
    )
    return 0


def ship_file(config: Config, path: Path, untracked: bool) -> int:
    try:
        rows = shipping.read_rows(path)
    except shipping.FileRefused as refused:
        print(f"orders ship: {refused}", file=sys.stderr)
        return 2
    open_db(config)
    relax_commits()
    notices = Notices(config, Renderer(config))
    if sys.stdout.isatty():
        results = _with_progress(notices, rows, untracked)
    else:
        results = shipping.ship_rows(notices, rows, untracked, lambda r: print(r.said))
    print(shipping.summary(results))
    failed = [r.row.line for r in results if r.failed]
    if failed:
        lines = ", ".join(map(str, failed[:20])) + (" …" if len(failed) > 20 else "")
        print(f"{len(failed)} rows failed: lines {lines}", file=sys.stderr)
    return 1 if failed else 0


def relax_commits() -> None:
    """One transaction per row, each committed without waiting for the disk: a power cut may
    lose the last rows' shipping (with their notices, never one without the other), and the
    same file run again ships them; nothing else changes. The disk's wait was 5 ms a row."""
    if storage.is_postgres():
        storage.db.execute_sql("SET synchronous_commit TO off")
    else:
        storage.db.execute_sql("PRAGMA synchronous = NORMAL")


def _with_progress(notices, rows, untracked) -> list:
    """On a terminal: each row's line above a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("shipping", total=len(rows))

        def report(result) -> None:
            progress.console.print(result.said, markup=False, highlight=False)
            progress.advance(task)

        return shipping.ship_rows(notices, rows, untracked, report)


def move_verb(to: str):
    def run(config: Config, args) -> int:
        open_db(config)
        notices = Notices(config, Renderer(config))
        try:
            order = fulfilment.move(notices, args.order_no, to, utcnow())
        except fulfilment.NoSuchOrder:
            print(f"no order {args.order_no}", file=sys.stderr)
            return 1
        except fulfilment.WrongStatus as refused:
            print(f"{refused}", file=sys.stderr)
            return 1
        print(f"{order.order_no} {to}")
        return 0

    return run
