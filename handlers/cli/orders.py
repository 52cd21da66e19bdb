"""`orders export`, `orders ship|deliver|cancel ORDER_NO`: what shippers need, and moving an
order forward (placed → shipped → delivered, or placed/shipped → cancelled)."""

from __future__ import annotations

import csv
import io
import sys
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.forms.order import OrderAnswers
from bot.gifting import fulfilment, orders
from bot.outgoing.notices import Notices
from bot.render import Renderer
from handlers.cli.common import csv_cell, open_db, show
from storage.models import utc_text, utcnow

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
    ship = verb("ship", ship_order, "mark an order shipped; the recipient is told", ords)
    ship.add_argument("order_no")
    ship.add_argument("--carrier", default="", help="e.g. 顺丰")
    ship.add_argument("--tracking", default="", help="the carrier's tracking number")
    verb("deliver", move_verb("delivered"), "mark a shipped order delivered", ords).add_argument(
        "order_no"
    )
    verb(
        "cancel", move_verb("cancelled"), "cancel an order: its unit goes back to stock", ords
    ).add_argument("order_no")


def export_row(order, zone: ZoneInfo) -> dict:
    """Every field a shipper needs; every time with its UTC offset."""
    slot = OrderAnswers.from_order(order, zone.key).delivery
    return {
        "order_no": order.order_no,
        "status": order.status,
        "created_at": utc_text(order.created_at),
        "gift_id": order.gift_id,
        "gift_name": order.gift.name,
        "swapped_from": order.swapped_from,  # the gift given, when the recipient took gift_id instead
        "variant": order.variant,
        "name": order.name,
        "phone": order.phone,
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
        "shipped_at": utc_text(order.shipped_at),
        "delivered_at": utc_text(order.delivered_at),
        "cancelled_at": utc_text(order.cancelled_at),
    }


def export_orders(config: Config, args) -> int:
    open_db(config)
    zone = ZoneInfo(config.delivery.timezone)
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


def ship_order(config: Config, args) -> int:
    return _move(config, args.order_no, "shipped", carrier=args.carrier, tracking=args.tracking)


def move_verb(to: str):
    def run(config: Config, args) -> int:
        return _move(config, args.order_no, to)

    return run


def _move(config: Config, order_no: str, to: str, **shipping: str) -> int:
    open_db(config)
    notices = Notices(config, Renderer(config))
    try:
        order = fulfilment.move(notices, order_no, to, utcnow(), **shipping)
    except fulfilment.NoSuchOrder:
        print(f"no order {order_no}", file=sys.stderr)
        return 1
    except fulfilment.WrongStatus as refused:
        print(f"{refused}", file=sys.stderr)
        return 1
    print(f"{order.order_no} {to}")
    return 0
