"""The report's charts: SVG drawn on the server by pygal, to inline in one HTML page that
needs nothing else (no script, no font, no picture from anywhere).

Usage::

    svg = charts.funnel(figures["funnel"], words)    # "<svg …>…</svg>", words: labels by key
    charts.days(figures["days"], words); charts.gifts(...); charts.money(...); charts.draws(...)

The page (templates/reports/campaign.html) calls these with its own words for each key, so
every word a person reads stays in templates/.
"""

from __future__ import annotations

import re

import pygal
from markupsafe import Markup
from pygal.style import Style

STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#333",
    foreground_strong="#111",
    foreground_subtle="#999",
    colors=("#07c160", "#1989fa", "#ff976a", "#ee0a24", "#7232dd", "#969799"),
    # Fonts the reader's machine has; none is fetched.
    font_family='"PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif',
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=12,
    legend_font_size=13,
    title_font_size=15,
)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>|<!--.*?-->", re.S)
OPTIONS = {"width": 720, "height": 320, "print_values": True, "print_zeroes": False,
           "legend_at_bottom": True}  # fmt: skip


def _chart(kind, **options):
    return kind(
        style=STYLE, js=[], disable_xml_declaration=True, explicit_size=True,
        **(OPTIONS | options),
    )  # fmt: skip


def _svg(chart) -> Markup:
    """The chart's SVG without the script pygal always adds (its tooltips' settings, which
    nothing here reads: a picture needs none) and its comments (links to its home page)."""
    return Markup(_SCRIPT.sub("", chart.render(is_unicode=True)))


def counts(top: int) -> list[int]:
    """Whole-number ticks up to `top` (pygal would mark 0.2, 0.4… for a count of 2)."""
    step = max(1, -(-top // 8))
    return list(range(0, max(top, 1) + step, step))


def funnel(steps: dict[str, int], words: dict[str, str]) -> Markup:
    chart = _chart(pygal.HorizontalBar, show_legend=False, height=360)
    chart.y_labels = counts(max(steps.values(), default=0))
    chart.x_labels = [words[step] for step in reversed(steps)]  # drawn bottom up: shares on top
    chart.add(words["count"], list(reversed(steps.values())))
    return _svg(chart)


def days(rows: list[dict], words: dict[str, str]) -> Markup:
    chart = _chart(pygal.Bar, x_label_rotation=-45, print_values=len(rows) <= 14,
                   show_minor_x_labels=False)  # fmt: skip
    chart.x_labels = [row["date"][5:] for row in rows]
    chart.x_labels_major = chart.x_labels[:: max(1, len(rows) // 10)]
    chart.y_labels = counts(max((row[k] for row in rows for k in ("shares", "claims", "shipped")),
                                default=0))  # fmt: skip
    for key in ("shares", "claims", "shipped"):
        chart.add(words[key], [row[key] for row in rows])
    return _svg(chart)


def gifts(rows: list[dict], words: dict[str, str]) -> Markup:
    chart = _chart(pygal.StackedBar)
    chart.y_labels = counts(max((row["shared"] for row in rows), default=0))
    chart.x_labels = [row["name"] for row in rows]
    for key in ("claimed", "expired", "revoked"):
        chart.add(words[key], [row[key] for row in rows])
    chart.add(words["left"], [row["shared"] - row["claimed"] - row["expired"] - row["revoked"]
                              for row in rows])  # fmt: skip
    return _svg(chart)


def money(books: dict[str, int], words: dict[str, str]) -> Markup:
    chart = _chart(pygal.Bar, show_legend=False, value_formatter=lambda v: f"¥{v:,.2f}")
    chart.x_labels = [words[key] for key in ("paid_fen", "refunded_fen", "net_fen")]
    chart.add(words["yuan"], [books[key] / 100 for key in ("paid_fen", "refunded_fen", "net_fen")])
    return _svg(chart)


def draws(totals: dict, words: dict[str, str]) -> Markup:
    chart = _chart(pygal.Bar, show_legend=False)
    chart.y_labels = counts(totals["entrants"])
    chart.x_labels = [words[key] for key in ("entrants", "winners", "claimed")]
    chart.add(words["people"], [totals[key] for key in ("entrants", "winners", "claimed")])
    return _svg(chart)
