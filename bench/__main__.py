"""`python -m bench [--messages N] [--db URL]`: latency of the real callback, end to end.

Starts the real server in this process on a free port (SQLite in a temporary
folder unless --db is given), then plays WeChat: signed messages over HTTP, one
at a time, as many users would send them, and reports p50/p95/p99 latency,
throughput and the process's peak memory. WeChat gives up after 5 s, so the
target is p99 well under 100 ms on one core.

Scenarios: the catalogue (read-only), the giver's share dialogue to its card
(writes: conversation rows, stock reservation), and the recipient's chat order
form to its order (the order transaction and its outbox rows).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import LiveBot  # noqa: E402  (the same real server the tests start)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000


def report(name: str, samples: list[float]) -> None:
    q = statistics.quantiles(samples, n=100)
    total = sum(samples) / 1000
    print(
        f"{name:<22} n={len(samples):<5} p50={q[49]:6.2f} ms  p95={q[94]:6.2f} ms  "
        f"p99={q[98]:6.2f} ms  max={max(samples):6.2f} ms  {len(samples) / total:7.1f} msg/s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bot = LiveBot({}, args.db or f"sqlite:///{tmp}/bench.db")
        try:
            run(bot, args.messages)
        finally:
            bot.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (server, fakes and client in one process): {peak:.0f} MiB")
    return 0


def run(bot: LiveBot, messages: int) -> None:
    wx = bot.wx
    catalogue = [timed(wx.text, f"o_browse_{i % 50}", "礼品") for i in range(messages)]
    report("catalogue", catalogue)

    sharing, tokens = [], []
    for i in range(messages // 6):
        giver = f"o_giver_{i}"
        for text in ("4", "送", "1", "跳过"):
            sharing.append(timed(wx.text, giver, text))
        start = time.perf_counter()
        card = wx.text(giver, "确认")
        sharing.append((time.perf_counter() - start) * 1000)
        tokens.append(card["article"]["Url"].rsplit("/", 1)[1])
    report("share dialogue", sharing)

    ordering = []
    answers = ("张小红", "13800138000", "广东省深圳市南山区科技园南区8栋1201", "1", "确认")
    for i, token in enumerate(tokens):
        friend = f"o_friend_{i}"
        ordering.append(timed(wx.text, friend, f"领取 {token}"))
        ordering += [timed(wx.text, friend, text) for text in answers]
    report("chat order form", ordering)
    report("all", catalogue + sharing + ordering)


if __name__ == "__main__":
    sys.exit(main())
