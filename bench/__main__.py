"""`python -m bench`: the bot under load against the bare Tornado handler, in the same run.

    python -m bench [--scenarios catalogue,form-step,claim,page] [--db sqlite|postgres|both|auto]
                    [--workers 1[,2,…]] [--duration 10] [--warmup 2] [--rounds 3]
                    [--connections 16] [--threads 1] [--users 1000] [--safe]
                    [--big [--big-scale 1]] [--memory] [--paced 0.7] [--no-record]
    python -m bench profile [catalogue|form-step|claim|page] [--db sqlite] [--duration 15]
    python -m bench roundtrips [--db sqlite|postgres|both] [--messages 120]
    python -m bench sends [--db sqlite|postgres|both] [--delay-ms 150] [--rate 120]

See bench/README.md for what each scenario sends, what is checked and how to
read the results and profiles.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from bench import report
from bench.scenarios import SCENARIOS
from bench.server import PG_BASE, pg_reachable
from bench.wrk import WrkMissing, wrk_path


def csv_list(choices=None, kind=str):
    def parse(text: str):
        items = [kind(x.strip()) for x in text.split(",") if x.strip()]
        bad = [x for x in items if choices and x not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices or [])}")
        return items

    return parse


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("a fraction from 0 to 1 (0: no paced run)")
    return value


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load the bot and a bare Tornado handler with wrk, alternating; "
        "report msg/s, the ratio to bare, latency, memory and correctness checks.",
    )
    p.add_argument("--scenarios", type=csv_list(list(SCENARIOS)), default=list(SCENARIOS),
                   help="comma-separated; default: all")  # fmt: skip
    p.add_argument("--db", choices=["sqlite", "postgres", "both", "auto"], default="auto",
                   help="auto (default): SQLite, and PostgreSQL when reachable")  # fmt: skip
    p.add_argument("--workers", type=csv_list(kind=int), default=[1],
                   help="bot processes (passed to serve as --workers N when N > 1)")  # fmt: skip
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each")
    p.add_argument("--rounds", type=int, default=3, help="bare+bot pairs per scenario (median)")
    p.add_argument("--connections", type=int, default=16, help="wrk -c")
    p.add_argument("--threads", type=int, default=1, help="wrk -t")
    p.add_argument("--users", type=int, default=1000, help="distinct users (catalogue, page)")
    p.add_argument("--safe", action="store_true", help="safe mode: encrypted pushes and replies")
    p.add_argument("--big", action="store_true",
                   help="seed 10^6 orders, 10^5 users, 10^6 inbound messages first")  # fmt: skip
    p.add_argument("--big-scale", type=float, default=1.0, help="multiply --big's sizes")
    p.add_argument("--memory", action="store_true",
                   help="also send --memory-messages and sample RSS every --memory-every")  # fmt: skip
    p.add_argument("--memory-messages", type=int, default=100_000)
    p.add_argument("--memory-every", type=int, default=10_000)
    p.add_argument("--memory-scenario", choices=list(SCENARIOS), default="catalogue")
    p.add_argument("--paced", type=fraction, default=0.7, metavar="FRACTION",
                   help="after each scenario's rounds, one bot run paced at FRACTION of their "
                   "median rate (default 0.7; 0: none)")  # fmt: skip
    p.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    p.add_argument("--results", type=Path, default=report.RESULTS, help=argparse.SUPPRESS)
    return p


def pick_dbs(choice: str) -> tuple[list[str], str | None]:
    """The databases to run on, and a note when PostgreSQL was left out."""
    if choice == "sqlite":
        return ["sqlite"], None
    reason = pg_reachable()
    if choice in ("postgres", "both") and reason:
        raise SystemExit(f"PostgreSQL is not reachable at {PG_BASE}: {reason}")
    if choice == "postgres":
        return ["postgres"], None
    if reason:
        return ["sqlite"], f"PostgreSQL left out: not reachable at {PG_BASE} ({reason})"
    return ["sqlite", "postgres"], None


def pg_version() -> str | None:
    if pg_reachable():
        return None
    import psycopg2

    from bench.server import pg_connect_kwargs

    conn = psycopg2.connect(**pg_connect_kwargs(PG_BASE))
    try:
        cur = conn.cursor()
        cur.execute("SHOW server_version")
        return cur.fetchone()[0]
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    try:
        wrk_path()
    except WrkMissing as exc:
        print(exc, file=sys.stderr)
        return 2
    if argv[:1] == ["profile"]:
        from bench.profile import main as profile_main

        return profile_main(argv[1:])
    if argv[:1] == ["roundtrips"]:
        from bench.roundtrips import main as roundtrips_main

        return roundtrips_main(argv[1:])
    if argv[:1] == ["sends"]:
        from bench.sends import main as sends_main

        return sends_main(argv[1:])
    args = run_parser().parse_args(argv)
    from bench.runner import Options, run

    dbs, note = pick_dbs(args.db)
    if note:
        print(note)
    opts = Options(
        scenarios=args.scenarios, dbs=dbs, workers=args.workers, duration=args.duration,
        warmup=args.warmup, rounds=args.rounds, users=args.users, connections=args.connections,
        threads=args.threads, safe=args.safe, big=args.big, big_scale=args.big_scale,
        memory=args.memory, memory_messages=args.memory_messages,
        memory_every=args.memory_every, memory_scenario=args.memory_scenario, paced=args.paced,
    )  # fmt: skip
    info = report.machine(pg_version())
    load_before = report.load_average()
    rows, sections = run(opts)
    load_after = report.load_average()
    table = report.table(rows, paced=opts.paced)
    settings = (
        f"Command: `{shlex.join(['python', '-m', 'bench', *argv])}`. wrk -t{opts.threads} "
        f"-c{opts.connections}; {opts.rounds} rounds of {opts.duration:g} s per target "
        f"(after {opts.warmup:g} s of warm-up), bare then bot; "
        f"{'safe mode (encrypted)' if opts.safe else 'plaintext mode'}; "
        f"{opts.users} users. Load average before {load_before}, after {load_after}."
    )
    if opts.paced:
        at = "@" + report.percent(opts.paced)
        settings += (
            f" Then, per scenario, one more bot run (same warm-up and length) paced at "
            f"{opts.paced * 100:.0f} % of its median bot msg/s, requests sent on a fixed "
            f"schedule: msg/s {at} is the rate it reached, p50/p99 {at} its latency "
            "(the target: p99 < 100 ms at full load, < 30 ms at 70 %)."
        )
    notes = [note] if note else []
    busy = report.busy(load_before, load_after)
    if busy:
        notes.append(busy)
    notes += [
        f"**{r.scenario} on {r.db}, {r.workers} worker(s): the paced run reached "
        f"{r.paced_rate:.0f} of the {r.paced_asked:.0f} msg/s asked**: the bot fell behind "
        "the schedule, so its latency is not that of a bot keeping up at that rate."
        for r in rows
        if r.paced_asked and r.paced_rate < 0.9 * r.paced_asked
    ]
    failures = [r for r in rows if r.problems]
    for r in failures:
        notes.append(f"**{r.scenario} on {r.db}, {r.workers} worker(s): checks failed**")
        notes += [f"- {p}" if "\n" not in p else f"- {p.splitlines()[0]}\n\n```\n"
                  + "\n".join(p.splitlines()[1:])[:3000] + "\n```" for p in r.problems[:12]]  # fmt: skip
    facts = [
        f"- {r.scenario}/{r.db}: " + ", ".join(f"{k} {v}" for k, v in r.facts.items())
        for r in rows
        if r.facts
    ]
    body = table
    if facts:
        body += "\n\nChecks of the last round (database counts):\n\n" + "\n".join(facts)
    for section in sections:
        body += "\n\n" + section
    if notes:
        body += "\n\n" + "\n".join(notes)
    print()
    print("\n".join(f"{k}: {v}" for k, v in info.items()))
    print(settings)
    print()
    print(body)
    if not args.no_record:
        title = f"`{shlex.join(['python', '-m', 'bench', *argv])}`"
        report.append_results(args.results, title, info, settings, body)
        print(f"\nappended to {args.results}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
