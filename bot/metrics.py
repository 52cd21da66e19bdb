"""What operators graph: messages, replies, orders, outbox sends and the callback's latency,
in Prometheus' text format at `GET /metrics`.

Usage::

    metrics.handled("text", "Text", seconds)   # a push answered, its reply, how long it took
    metrics.ordered("chat")                    # an order placed
    metrics.outbox_sent("sms", "sent")         # sent | retry | dead
    metrics.login_code("sent")                 # or the Code it was refused with
    body, content_type = metrics.exposition(outbox_rows, oldest_pending_seconds)

With `serve --workers N` every process counts into files under PROMETHEUS_MULTIPROC_DIR
(set by `serve` before anything imports prometheus_client) and any process's /metrics adds
them up; in one process the default registry serves. The outbox figures are read from the
database at scrape time, so they are the same whichever process answers.
"""

from __future__ import annotations

import functools
import os
from types import SimpleNamespace

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector


def use_directory(path: str) -> None:
    """Count into files under `path`, shared by every process forked after this (call it
    before any metric is used: `serve --workers N` does, in the parent)."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    values.ValueClass = values.get_value_class()


@functools.cache
def _metrics() -> SimpleNamespace:
    """The metrics, made on first use: after `use_directory`, so forked workers share them."""
    return SimpleNamespace(
        messages=Counter("giftbot_messages", "WeChat pushes handled, by kind", ["kind"]),
        replies=Counter("giftbot_replies", "Replies to pushes, by type (None: success)", ["type"]),
        orders=Counter("giftbot_orders", "Orders placed, by channel", ["channel"]),
        outbox=Counter(
            "giftbot_outbox_sends", "Outbox sends, by kind and result", ["kind", "result"]
        ),
        login_codes=Counter(
            "giftbot_login_codes",
            "Login codes asked for outside WeChat: sent, or the reason refused",
            ["result"],
        ),
        callback=Histogram(
            "giftbot_callback_seconds",
            "Time from a push read to its reply written",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        ),
    )


def handled(kind: str, reply: str, seconds: float) -> None:
    m = _metrics()
    _child(m.messages, kind).inc()
    _child(m.replies, reply).inc()
    m.callback.observe(seconds)


@functools.cache
def _child(counter: Counter, *labels: str):
    """A labelled counter's child, looked up once: `labels()` takes a lock each call."""
    return counter.labels(*labels)


def ordered(channel: str) -> None:
    _metrics().orders.labels(channel).inc()


def outbox_sent(kind: str, result: str) -> None:
    _metrics().outbox.labels(kind, result).inc()


def login_code(result: str) -> None:
    """A login code queued ("sent") or refused (its Code: a limit, a wrong number, …)."""
    _metrics().login_codes.labels(str(result)).inc()


class _OutboxNow:
    """The outbox as the database has it now: rows by status, the oldest pending's age."""

    def __init__(self, rows: dict[str, int], oldest_pending_seconds: float):
        self.rows, self.oldest = rows, oldest_pending_seconds

    def collect(self):
        rows = GaugeMetricFamily("giftbot_outbox_rows", "Outbox rows by status", labels=["status"])
        for status in ("pending", "sent", "dead"):
            rows.add_metric([status], self.rows.get(status, 0))
        yield rows
        yield GaugeMetricFamily(
            "giftbot_outbox_oldest_pending_seconds",
            "Age of the oldest outbox row still waiting to be sent (0: none)",
            value=self.oldest,
        )


def exposition(outbox_rows: dict[str, int], oldest_pending_seconds: float) -> tuple[bytes, str]:
    """The text Prometheus scrapes, and its content type."""
    _metrics()  # so every name shows, at zero, before its first count
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
        collectors = [registry]
    else:
        collectors = [REGISTRY]
    now = CollectorRegistry()
    now.register(_OutboxNow(outbox_rows, oldest_pending_seconds))
    return b"".join(generate_latest(r) for r in [*collectors, now]), CONTENT_TYPE_LATEST
