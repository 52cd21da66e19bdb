"""`orders ship --from FILE`: ship (or correct) every order of a courier's CSV export.

Usage::

    rows = read_rows(Path("shipped.csv"))     # FileRefused when it cannot be read as one
    results = ship_rows(notices, rows, untracked=False, report=print)
    summary(results)                          # "3 rows: 1 shipped, 1 corrected, 0 unchanged, 1 failed"

The file: a header naming `order_no`, `carrier` and `tracking` (any order, other columns
ignored), then one order a row; UTF-8 with or without a BOM, or GB18030 as Excel saves it in
China. Each row is its own transaction (bot/gifting/fulfilment.py's `ship`), so one bad row
stops nothing; the orders are read a few hundred at a time first, and a row that would
change nothing (the same file again) never takes a lock or texts anyone. An order on two
rows is shipped by the first; a later one that says otherwise fails, naming the first.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import peewee

from bot.gifting import fulfilment
from bot.outgoing.notices import Notices
from storage.models import utcnow

COLUMNS = ("order_no", "carrier", "tracking")
OUTCOMES = (fulfilment.SHIPPED, fulfilment.CORRECTED, fulfilment.UNCHANGED, "failed")


class FileRefused(Exception):
    """The file cannot be read as a courier's CSV: the message says why, in one line."""


@dataclass(frozen=True)
class Row:
    line: int  # in the file, as a spreadsheet numbers it (the header is line 1)
    order_no: str
    carrier: str
    tracking: str


@dataclass(frozen=True)
class Result:
    row: Row
    outcome: str  # shipped | corrected | unchanged | failed
    said: str  # the line printed for it

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


def read_rows(path: Path) -> list[Row]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileRefused(f"cannot read {path}: {exc.strerror or exc}") from None
    records = csv.reader(io.StringIO(decode(data, path), newline=""))
    header, rows = None, []
    for number, cells in enumerate(records, start=1):
        if not any(c.strip() for c in cells):
            continue  # a blank line, or a row of empty cells
        if header is None:
            header = _header(cells, path, number)
            continue
        padded = cells + [""] * len(header)
        rows.append(Row(number, *(padded[header[name]].strip() for name in COLUMNS)))
    if header is None:
        raise FileRefused(f"{path} is empty: its first line must be {','.join(COLUMNS)}")
    return rows


def decode(data: bytes, path: Path) -> str:
    """UTF-8 (a BOM or none), else GB18030 (Excel's "CSV" on a Chinese Windows)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise FileRefused(f"{path} is neither UTF-8 nor GB18030 text") from None


def _header(cells: list[str], path: Path, number: int) -> dict[str, int]:
    names = [unicodedata.normalize("NFKC", c).strip().lower() for c in cells]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise FileRefused(
            f"{path} line {number} must name the columns {','.join(COLUMNS)} "
            f"(missing {', '.join(missing)}; found {','.join(cells)[:80]})"
        )
    return {c: names.index(c) for c in COLUMNS}


def ship_rows(
    notices: Notices, rows: list[Row], untracked: bool, report: Callable[[Result], None]
) -> list[Result]:
    """Each row shipped, corrected, unchanged or failed; `report` hears of each as it ends."""
    known = fulfilment.on_record([r.order_no for r in rows if r.order_no])
    first: dict[str, Row] = {}
    results = []
    for row in rows:
        result = _ship_row(notices, row, untracked, known, first)
        report(result)
        results.append(result)
    return results


def _ship_row(notices, row: Row, untracked: bool, known: dict, first: dict) -> Result:
    number = fulfilment.typed(row.order_no)
    try:
        if not number:
            raise fulfilment.BadShipping("no order number")
        carrier, tracking = fulfilment.shipping(row.carrier, row.tracking, untracked)
        if number in first:
            return _again(row, number, first[number], carrier, tracking)
        first[number] = row
        order = known.get(number)
        if order is None:
            raise fulfilment.NoSuchOrder(number)
        if fulfilment.outcome_of(order, carrier, tracking) == fulfilment.UNCHANGED:
            return Result(row, fulfilment.UNCHANGED, f"{_at(row)}{number} unchanged")
        was = _shipped_with(order)
        order, outcome = fulfilment.ship(
            notices, number, utcnow(), carrier, tracking, untracked, known=order
        )
    except fulfilment.NoSuchOrder:
        return _failed(row, number, "no such order")
    except (fulfilment.WrongStatus, fulfilment.BadShipping) as refused:
        return _failed(row, number, _reason(refused))
    except peewee.DatabaseError as exc:
        return _failed(row, number, f"database: {' '.join(str(exc).split())}")
    now = _shipped_with(order)
    said = {
        fulfilment.SHIPPED: f"shipped {now}".rstrip(),
        fulfilment.CORRECTED: f"corrected {was} → {now}",
        fulfilment.UNCHANGED: "unchanged",
    }[outcome]
    return Result(row, outcome, f"{_at(row)}{number} {said}")


def _again(row: Row, number: str, earlier: Row, carrier: str, tracking: str) -> Result:
    """An order already on an earlier line: the same again changes nothing; else it fails."""
    before = fulfilment.shipping(earlier.carrier, earlier.tracking, untracked=True)
    if (carrier, tracking) == before:
        return Result(
            row, fulfilment.UNCHANGED, f"{_at(row)}{number} unchanged (as line {earlier.line})"
        )
    return _failed(row, number, f"line {earlier.line} ships it with another carrier or tracking")


def _failed(row: Row, number: str, reason: str) -> Result:
    return Result(row, "failed", f"{_at(row)}{number or '(no order number)'} failed: {reason}")


def _reason(refused: Exception) -> str:
    if isinstance(refused, fulfilment.WrongStatus):
        return f"the order is {refused.order.status}"
    return str(refused)


def _at(row: Row) -> str:
    return f"line {row.line}: "


def _shipped_with(order) -> str:
    return " ".join(v for v in (order.carrier, order.tracking) if v) or "(no tracking)"


def summary(results: list[Result]) -> str:
    counts = {o: sum(r.outcome == o for r in results) for o in OUTCOMES}
    return f"{len(results)} rows: " + ", ".join(f"{n} {o}" for o, n in counts.items())
