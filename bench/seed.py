"""`--big`: fill the bot's database with history before the scenarios run.

    counts = seed(db_url, orders=10**6, users=10**5, inbound=10**6)

Bulk inserts into the tables the bot's migrations made (so start the bot once
before, and again after: it must not be running). Rows follow
storage/models.py: every field is named here or takes the model's default,
and a field that has neither stops the seeding with its name. The history is
old and settled: shares of 10 units, all claimed, expired and released (the
expiry sweep has nothing to do), orders placed or shipped, one stored reply
per inbound message. Keys never meet the scenarios' own: users `o_big_…`,
tokens `big…`, order numbers of 2025-01-01, MsgIds from 2×10¹⁷.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time

import peewee

from storage import db as storage
from storage.models import Gift, InboundMessage, Order, Share, User, utcnow

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
UNITS = 10  # per share
BATCH = 50_000
REPLY = {
    "type": "text",
    "content": "🎉 领取成功！订单号：G250101-7KQ3X\n礼物：明前龙井礼盒\n姓名：张小红\n手机：138****8000\n"
    "地址：广东省深圳市南山区科技园南区 8 栋 1201\n收货时间：01月03日 09:00-12:00\n\n"
    "我们已给你的手机发短信。回复「我收到的」可随时查看。",
}


def code(n: int, width: int = 5) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, len(ALPHABET))
        out.append(ALPHABET[r])
    return "".join(reversed(out))


def _defaults(model, given: list[str]) -> tuple[list[str], list]:
    """The columns not given, with the model's default (computed once) or NULL."""
    names, values = [], []
    for f in model._meta.sorted_fields:
        if f.name in given or (f.primary_key and isinstance(f, peewee.AutoField)):
            continue
        if f.default is not None:
            value = f.default() if callable(f.default) else f.default
        elif f.null:
            value = None
        else:
            raise RuntimeError(
                f"seed: {model.__name__}.{f.name} has no default: name it in seed.py"
            )
        names.append(f.name)
        values.append(f.db_value(value))
    return names, values


def _plain(value):
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class Loader:
    def __init__(self, database: peewee.Database):
        self.database = database
        self.pg = isinstance(database, peewee.PostgresqlDatabase)

    def load(self, model, fields: list[str], rows) -> int:
        extra_names, extra_values = _defaults(model, fields)
        by_name = model._meta.fields
        columns = [by_name[n].column_name for n in fields + extra_names]
        converters = [by_name[n].db_value for n in fields]
        table = model._meta.table_name
        total, chunk = 0, []

        def flush() -> None:
            if not chunk:
                return
            if self.pg:
                self._copy(table, columns, chunk)
            else:
                marks = ", ".join("?" for _ in columns)
                cols = ", ".join(f'"{c}"' for c in columns)
                self.database.connection().executemany(
                    f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', chunk
                )
            chunk.clear()

        with self.database.atomic():
            for row in rows:
                chunk.append(
                    [_plain(c(v)) for c, v in zip(converters, row, strict=True)]
                    + [_plain(v) for v in extra_values]
                )
                total += 1
                if len(chunk) >= BATCH:
                    flush()
            flush()
        return total

    def _copy(self, table: str, columns: list[str], rows: list[list]) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf)
        for row in rows:
            writer.writerow(["\\N" if v is None else _pg(v) for v in row])
        buf.seek(0)
        cols = ", ".join(f'"{c}"' for c in columns)
        cursor = self.database.connection().cursor()
        cursor.copy_expert(
            f"COPY \"{table}\" ({cols}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buf
        )


def _pg(value):
    if isinstance(value, bool):
        return "t" if value else "f"
    return value


def seed(db_url: str, orders: int = 10**6, users: int = 10**5, inbound: int = 10**6) -> dict:
    """Insert the history; returns {table: rows inserted, "seconds": …}."""
    started = time.monotonic()
    database = storage.connect(db_url)
    loader = Loader(database)
    gifts = [g.id for g in Gift.select(Gift.id).order_by(Gift.position)]
    if not gifts:
        raise RuntimeError("seed: no gifts: start the bot once first (it syncs the catalogue)")
    now = utcnow().replace(microsecond=0)
    openids = [f"o_big_{i:06d}" for i in range(users)]
    shares = -(-orders // UNITS)
    share_base = (Share.select(peewee.fn.MAX(Share.id)).scalar() or 0) + 1
    order_base = (Order.select(peewee.fn.MAX(Order.id)).scalar() or 0) + 1
    day = dt.timedelta(days=1)

    def ago(i: int, n: int) -> dt.datetime:  # spread over the last 365 days, oldest first
        return now - 365 * day * (n - i) / n

    done = {}
    done["user"] = loader.load(
        User,
        ["openid", "first_seen", "last_seen", "subscribed"],
        ((o, ago(i, users), now - day, True) for i, o in enumerate(openids)),
    )
    done["share"] = loader.load(
        Share,
        ["id", "token", "giver", "gift", "quantity", "claimed", "blessing", "created_at",
         "expires_at", "released"],
        (
            (share_base + s, f"big{s:019d}", openids[s % users], gifts[s % len(gifts)], UNITS,
             UNITS, "生日快乐！" if s % 3 else "", ago(s, shares),
             ago(s, shares) + 3 * day, True)
            for s in range(shares)
        ),
    )  # fmt: skip
    done["order"] = loader.load(
        Order,
        ["id", "order_no", "share", "gift", "recipient", "name", "phone", "region",
         "address_detail", "delivery_date", "delivery_slot", "status", "channel", "created_at"],
        (
            (order_base + i, f"G250101-{code(i)}", share_base + i // UNITS,
             gifts[(i // UNITS) % len(gifts)], openids[(i + 1 + i // UNITS) % users], "张小红",
             "13800138000", "广东省深圳市南山区", "科技园南区 8 栋 1201",
             (ago(i, orders) + 2 * day).date(), "09:00-12:00",
             "shipped" if i % 4 else "placed", "chat" if i % 2 else "web", ago(i, orders))
            for i in range(orders)
        ),
    )  # fmt: skip
    reply = json.loads(json.dumps(REPLY))
    done["inbound_message"] = loader.load(
        InboundMessage,
        ["key", "openid", "received_at", "reply"],
        (
            (f"msg:{2 * 10**17 + i}", openids[i % users], ago(i, inbound), reply)
            for i in range(inbound)
        ),
    )
    if loader.pg:
        for table in ("share", "order"):
            database.execute_sql(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                f'(SELECT MAX(id) FROM "{table}"))'
            )
        database.execute_sql("ANALYZE")  # what autovacuum would soon do; SQLite is left as is
    database.close()
    done["seconds"] = round(time.monotonic() - started, 1)
    return done
