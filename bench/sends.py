"""Does the outbox keep up with a campaign's claims when the vendor takes its time?

    python -m bench sends [--db sqlite|postgres|both] [--delay-ms 150] [--rate 120]
                          [--duration 20]

The bot runs as in a benchmark, against the sink (bench/sink.py) answering each SMS and each
WeChat message after --delay-ms, as a vendor does (100–300 ms). wrk plays whole claims, each
recipient with a mobile of their own, paced at --rate messages a second for --duration
seconds: far below what the bot can answer, so what is measured is the outbox, not the CPU.
A claim queues about 2.4 rows (its SMS, the giver's notice …). Then the harness waits until
every row is sent and prints, per database: the rows queued in the window, those sent in
it, those left at its end, how long they took to go after it, and the outbox's rate.
"""

from __future__ import annotations

import argparse
import time

from bench import scenarios as sc
from bench.runner import size
from bench.server import BotServer, Databases, Helper

ROWS = {
    "queued": ('SELECT COUNT(*) FROM "outbox"', []),
    "sent": ('SELECT COUNT(*) FROM "outbox" WHERE "status" = \'sent\'', []),
    "pending": ('SELECT COUNT(*) FROM "outbox" WHERE "status" = \'pending\'', []),
}
DRAIN_LIMIT = 600  # seconds: an outbox slower than this is reported as such


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench sends")
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--delay-ms", type=float, default=150.0, help="the vendor's answer time")
    p.add_argument("--rate", type=float, default=120.0, help="claim messages a second")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of claims")
    args = p.parse_args(argv)
    failed = False
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        failed |= not measure(db, args)
    return 1 if failed else 0


def measure(db: str, args) -> bool:
    with Databases() as dbs:
        sink = Helper("sink", "--delay-ms", str(args.delay_ms), logdir=dbs.tmp).start()
        bot = BotServer(dbs.url(db), sink.url)
        try:
            bot.start()
            ctx = sc.Context(bot, bot.url)
            claim = sc.SCENARIOS["claim"]()
            for problem in claim.prepare(ctx):
                print(f"[{db}] preparing: {problem}")
            before = settled(ctx)  # what seeding queued
            batch = claim.batch(ctx, "bot", size(args.rate, args.duration + 3, ctx))
            result = ctx.load(
                "bot", batch.chains, args.duration, claim.route, claim.cycle,
                claim.route == "to", rate=args.rate,
            )  # fmt: skip
            end = counts(ctx)
            started = time.monotonic()
            after = settled(ctx)
            drained = time.monotonic() - started
        finally:
            bot.stop()
            sink.stop()
            bot.cleanup()
    queued = end["queued"] - before["queued"]
    in_window = end["sent"] - before["sent"]
    sent = after["sent"] - before["sent"]
    print(
        f"[{db}] vendor answering in {args.delay_ms:.0f} ms; claims at {result.rate:.0f} msg/s "
        f"for {args.duration:.0f} s (p99 {result.latency_ms['p99']:.0f} ms): "
        f"{queued} outbox rows queued, {in_window} sent in the window, {end['pending']} left at "
        f"its end and sent in the {drained:.1f} s after; the outbox sent "
        f"{sent / (args.duration + drained):.1f} rows a second ({queued / args.duration:.1f} "
        f"queued a second)"
    )
    problems = result.problems() + (["rows still pending"] if after["pending"] else [])
    for problem in problems:
        print(f"[{db}] problem: {problem}")
    return not problems


def counts(ctx: sc.Context) -> dict[str, int]:
    return sc.db_counts(ctx.bot.db_url, ROWS)


def settled(ctx: sc.Context) -> dict[str, int]:
    """The counts once every row queued has gone (or DRAIN_LIMIT has passed)."""
    started = time.monotonic()
    while (now := counts(ctx))["pending"] and time.monotonic() - started < DRAIN_LIMIT:
        time.sleep(0.2)
    return now
