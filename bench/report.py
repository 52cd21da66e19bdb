"""What a benchmark run found: the machine, the table, bench/RESULTS.md (appended, never rewritten).

Usage::

    info = machine(pg_url)                   # {"CPU": …, "cores": …, …}
    text = table(rows, paced=0.7)            # Markdown; paced: the paced run's columns too
    append_results(path, title, info, settings, text, notes)
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sqlite3
import statistics
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PREAMBLE = """# Benchmark results

Written by `make bench` / `python -m bench` (see bench/README.md): each section
is one run, newest last. Rates are medians over the rounds; "ratio" is the
median, over the rounds, of the bot's rate divided by the bare Tornado
handler's rate measured just before it in the same round. Numbers from a
shared or small machine are noisy: compare ratios within one section, and
sections taken on the same quiet machine.
"""


@dataclass
class Row:
    scenario: str
    db: str
    workers: int
    bot: list[float] = field(default_factory=list)  # msg/s per round
    bare: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)  # ms, the bot's
    p99: list[float] = field(default_factory=list)
    units: list[float] = field(default_factory=list)  # claims/s per round
    unit: str = ""
    # The ratio each round would have had with the CPU its outbox spent after it (a claim's
    # sends): ratio × CPU a reply in the window ÷ CPU a reply once all was sent.
    with_sends: list[float] = field(default_factory=list)
    peak_rss_kib: int = 0
    problems: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    note: str = ""  # e.g. "not supported yet"

    # one more bot run after the rounds, paced at a fraction of the median bot rate
    paced_asked: float = 0.0  # msg/s asked (0: no paced run)
    paced_rate: float = float("nan")  # msg/s reached
    paced_p50: float = float("nan")  # ms
    paced_p99: float = float("nan")

    def cells(self, paced: bool = False) -> list[str]:
        name = self.scenario
        if self.units:
            with_sends = f"; {med(self.with_sends):.3f} with its sends" if self.with_sends else ""
            name += f" ({med(self.units):.1f} {self.unit}/s{with_sends})"
        extra = 3 if paced else 0
        if self.note:
            failed = "FAILED" if self.problems else ""
            return [name, self.db, str(self.workers), self.note, *[""] * (5 + extra), failed]
        checks = "ok" if not self.problems else f"FAILED ({len(self.problems)})"
        cells = [
            name,
            self.db,
            str(self.workers),
            f"{med(self.bot):.0f}",
            f"{med(self.bare):.0f}",
            f"{med(self.ratios):.3f}",
            f"{med(self.p50):.1f}",
            f"{med(self.p99):.1f}",
        ]
        if paced:
            done = self.paced_asked > 0
            cells += [
                f"{self.paced_rate:.0f}" if done else "",
                f"{self.paced_p50:.1f}" if done else "",
                f"{self.paced_p99:.1f}" if done else "",
            ]
        return cells + [f"{self.peak_rss_kib / 1024:.0f}", checks]


HEAD = [
    "scenario", "db", "workers", "bot msg/s", "bare msg/s", "ratio", "p50 ms", "p99 ms",
    "peak RSS MiB", "checks",
]  # fmt: skip


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percent(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


def paced_head(fraction: float) -> list[str]:
    """The columns of the paced run, named after its fraction: "msg/s @70%", …"""
    at = "@" + percent(fraction)
    return [f"msg/s {at}", f"p50 {at} ms", f"p99 {at} ms"]


def table(rows: list[Row], paced: float = 0.0) -> str:
    """The Markdown table; `paced` (the fraction of the paced runs, 0: none) adds their columns
    after the full-load p99."""
    head = HEAD[:8] + paced_head(paced) + HEAD[8:] if paced else HEAD
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in (r.cells(bool(paced)) for r in rows)]
    return "\n".join(lines)


def plain_table(rows: list[list[str]], head: list[str]) -> str:
    """A table for the terminal, columns aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    out = ["  ".join(str(h).ljust(w) for h, w in zip(head, widths, strict=True))]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def machine(pg_version: str | None) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        ram = f"{kib / 1024**2:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"') + f" (kernel {platform.release()})"
    except OSError:
        pass
    from bench.wrk import wrk_version

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": ram,
        "OS": os_name,
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": pg_version or "not reachable",
        "wrk": wrk_version(),
    }


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def busy(before: str, after: str) -> str | None:
    """A warning when other work shared the machine: a load before the run started, or more
    than the run's own two busy processes (wrk and the server) at its end."""
    cores = os.cpu_count() or 1
    try:
        first, last = float(before.split()[0]), float(after.split()[0])
    except (ValueError, IndexError):
        return None
    if first <= cores * 0.5 and last <= 2 + cores * 0.5:
        return None
    return (
        f"**Noisy:** 1-minute load average {first:.2f} before and {last:.2f} after this run, "
        f"on {cores} cores (the run itself keeps about 2 busy): other work shared the machine, "
        "so rates move from round to round; compare the ratios."
    )


def append_results(path: Path, title: str, info: dict, settings: str, body: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else PREAMBLE
    facts = ", ".join(f"{k} {v}" for k, v in info.items() if k != "date")
    section = f"\n## {info['date']} — {title}\n\nMachine: {facts}.\n\n{settings}\n\n{body}\n"
    path.write_text(text.rstrip("\n") + "\n" + section, encoding="utf-8")
