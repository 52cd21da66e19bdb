"""What every verb of the command line shares: opening the database, and printing —
tables for people (rich's, on a terminal; plain columns when piped), JSON for scripts, cells
a spreadsheet cannot run.

Usage::

    open_db(config)
    show(rows, ["id", "name", "price_fen"], args.format, zone=zone)   # "json": plain JSON
    csv_cell("name", "=cmd|' /C calc'!A0")              # "'=cmd|' /C calc'!A0"

Rows speak to machines: money in integer fen under names ending `_fen`, times as ISO 8601
with their offset (`stamp`) under names ending `_at`. A table turns them into what a person
reads: `price_fen` 12300 is the column `price` showing `¥123.00`, a time is the minute in the
configured time zone (`2026-12-03 14:05`), and a long cell is cut (JSON keeps it whole).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import unicodedata
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.render import money
from storage import db as storage

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CELL_MAX = 40  # characters of a table cell; JSON has the rest
LAST_CELL_MAX = 64  # an error or reason: the line stays within 160 columns
FEN = "_fen"


def open_db(config: Config) -> None:
    storage.connect(config.database.url)
    storage.migrate()


def zone_of(config: Config) -> ZoneInfo:
    """The time zone people read times in: the delivery's, where the gifts arrive."""
    return ZoneInfo(config.delivery.timezone)


def stamp(when: dt.datetime | None, zone: ZoneInfo) -> str:
    """A stored (naive UTC) time for machines: ISO 8601 in `zone`, with its offset; "" for none."""
    if when is None:
        return ""
    return when.replace(tzinfo=dt.UTC).astimezone(zone).isoformat(timespec="seconds")


def in_zone(data, zone: ZoneInfo):
    """Rows (lists and dicts, however nested) whose times — ISO 8601 with an offset under a
    name ending `_at`, `_since` or `_seen` — are said in `zone`, as `stamp` says them; the
    instants stay the same."""
    if isinstance(data, list):
        return [in_zone(item, zone) for item in data]
    if isinstance(data, dict):
        return {k: _moved(v, zone) if _is_time(k) else in_zone(v, zone) for k, v in data.items()}
    return data


def _is_time(key: str) -> bool:
    return key.endswith(("_at", "_since", "_seen"))


def _moved(value, zone: ZoneInfo):
    if not isinstance(value, str) or not value:
        return value
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when.astimezone(zone).isoformat(timespec="seconds") if when.tzinfo else value


def show(
    rows: list[dict],
    columns: list[str],
    format: str = "table",
    title: str = "",
    zone: ZoneInfo | None = None,
) -> None:
    if format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    heads = [c.removesuffix(FEN) for c in columns]
    cells = [[for_people(c, row.get(c, ""), zone) for c in columns] for row in rows]
    for row in cells:  # the last column (an error, a reason) pads nothing: it may say more
        row[:-1] = [cut(v) for v in row[:-1]]
        row[-1:] = [cut(v, LAST_CELL_MAX) for v in row[-1:]]
    if sys.stdout.isatty():
        _rich_table(heads, cells, title)
    else:
        print_table(heads, cells)


def for_people(column: str, value, zone: ZoneInfo | None = None) -> str:
    """One cell as a person reads it: money in yuan, a time in the zone to the minute."""
    if column.endswith(FEN) and isinstance(value, int):
        return money(value) if value >= 0 else "-" + money(-value)
    if zone is not None and _is_time(column) and isinstance(value, str) and value:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is not None:
            return when.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return " ".join(str(value).split())


def cut(text: str, most: int = CELL_MAX) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _rich_table(heads: list[str], cells: list[list[str]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*heads, title=title or None, show_lines=False)
    for row in cells:
        table.add_row(*row)
    Console().print(table if cells else "(none)")


def print_table(heads: list[str], cells: list[list[str]]) -> None:
    """Plain columns, aligned for a terminal font (Chinese characters take two); the last
    column is not padded, so no line ends in spaces."""
    if not cells:
        print("(none)")
        return
    rows = [heads, *cells]
    widths = [max(width(row[i]) for row in rows) for i in range(len(heads))]
    for row in rows:
        padded = (v + " " * (w - width(v)) for v, w in zip(row, widths, strict=True))
        print("  ".join(padded).rstrip())


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def csv_cell(column: str, value):
    """A cell a spreadsheet shows as text: what a recipient typed must never run as a formula.

    Phones stay E.164 (`+8613800138000`, as every export writes them): the bot checked each
    one is a mobile number, `+` and digits, which no spreadsheet runs. Any other cell starting
    like a formula gets a leading apostrophe.
    """
    if not isinstance(value, str) or column == "phone":
        return value
    return "'" + value if value.startswith(FORMULA_STARTS) else value
