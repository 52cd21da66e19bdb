"""`report [--since YYYY-MM-DD] [--until YYYY-MM-DD] (--out FILE.html | --format json)`: how
the campaign went (bot/reports/campaign.py), as one page that stands alone or as JSON."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from bot.config import Config
from bot.render import Renderer
from bot.reports import campaign, charts
from handlers.cli.common import open_db
from storage.models import utcnow


def verbs(verb, top) -> None:
    report = verb(
        "report", make_report,
        "how the campaign went: funnel, days, gifts, money and draws, with charts",
        top,
    )  # fmt: skip
    report.add_argument("--since", type=day, metavar="YYYY-MM-DD", help="first day (included)")
    report.add_argument("--until", type=day, metavar="YYYY-MM-DD", help="last day (included)")
    out = report.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", type=Path, metavar="FILE.html", help="write one self-contained page")
    out.add_argument("--format", choices=["json"], help="print the figures as JSON")


def day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a day like 2026-12-01, not {text!r}") from None


def make_report(config: Config, args) -> int:
    if args.since and args.until and args.since > args.until:
        args.parser.error("--since is after --until")
    open_db(config)
    window = campaign.Window.of(config, args.since, args.until)
    figures = campaign.figures(config, window, utcnow())
    if args.format == "json":
        print(json.dumps(figures, ensure_ascii=False, indent=2))
        return 0
    page = Renderer(config).page("reports/campaign.html", figures=figures, charts=charts)
    try:
        args.out.write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"report: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0
