"""What every verb of the command line shares: opening the database, and printing —
tables for people (rich's, on a terminal; plain columns when piped), JSON for scripts, cells
a spreadsheet cannot run.

Usage::

    open_db(config)
    show(rows, ["id", "name", "stock"], args.format)   # "json" prints plain JSON
    csv_cell("name", "=cmd|' /C calc'!A0")              # "'=cmd|' /C calc'!A0"
"""

from __future__ import annotations

import json
import sys
import unicodedata

from bot.config import Config
from storage import db as storage

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def open_db(config: Config) -> None:
    storage.connect(config.database.url)
    storage.migrate()


def show(rows: list[dict], columns: list[str], format: str = "table", title: str = "") -> None:
    if format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
    elif sys.stdout.isatty():
        _rich_table(rows, columns, title)
    else:
        print_table(rows, columns)


def _rich_table(rows: list[dict], columns: list[str], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=title or None, show_lines=False)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    Console().print(table if rows else "(none)")


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Plain columns, aligned for a terminal font (Chinese characters take two)."""
    if not rows:
        print("(none)")
        return
    cells = [columns, *([str(r.get(c, "")) for c in columns] for r in rows)]
    widths = [max(width(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print("  ".join(v + " " * (w - width(v)) for v, w in zip(row, widths, strict=True)))


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def csv_cell(column: str, value):
    """A cell a spreadsheet shows as text: what a recipient typed must never run as a formula.

    Phones lose their `+` (Excel would read +86… as a formula, and couriers dial the national
    number); any other cell starting like a formula gets a leading apostrophe.
    """
    if not isinstance(value, str):
        return value
    if column == "phone":
        return value.removeprefix("+86") if value.startswith("+86") else value.lstrip("+")
    return "'" + value if value.startswith(FORMULA_STARTS) else value
