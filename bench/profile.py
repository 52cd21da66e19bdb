"""`python -m bench profile [scenario]`: where the bot's time goes while wrk loads it.

    python -m bench profile catalogue [--db sqlite] [--duration 15] [--rate 500] [--safe]

Starts the bot as in a benchmark, loads it with the scenario's messages, and
records it twice with py-spy (`record --gil --rate 500`): once as a speedscope
profile, once as a flame graph SVG, each for --duration seconds under load.
Both land in bench/profiles/ (not committed), with a text summary; the top
functions by own time (samples whose innermost frame is the function, the
GIL held) are printed. bench/README.md says how to read them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from bench import scenarios as sc
from bench.runner import size
from bench.server import ROOT, BotServer, Databases, Helper, serve_supports_workers

PROFILES = Path(__file__).resolve().parent / "profiles"


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def short(path: str) -> str:
    for marker in ("site-packages/", "dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    root = str(ROOT) + "/"
    if path.startswith(root):
        return path[len(root) :]
    if "/lib/python3" in path:
        return "stdlib/" + path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return path


def top_functions(speedscope: Path, n: int = 15) -> tuple[list[tuple], float, dict[str, float]]:
    """The functions with most own time: [(own share, inclusive share, function, file)];
    the seconds sampled with the GIL held; each thread's share of them; each file's own share."""
    data = json.loads(speedscope.read_text())
    frames = data["shared"]["frames"]
    keys = [(f["name"], short(f.get("file", ""))) for f in frames]
    own: Counter = Counter()
    inclusive: Counter = Counter()
    threads: Counter = Counter()
    files: Counter = Counter()
    total = 0.0
    for profile in data["profiles"]:
        name = profile.get("name", "?").split('"')[1:2] or [profile.get("name", "?")]
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack:
                continue
            total += weight
            threads[name[0]] += weight
            own[keys[stack[-1]]] += weight
            files[keys[stack[-1]][1]] += weight
            for key in {keys[i] for i in stack}:
                inclusive[key] += weight
    total = total or 1.0
    rows = [
        (count / total, inclusive[key] / total, key[0], key[1]) for key, count in own.most_common(n)
    ]
    by_thread = {t: w / total for t, w in threads.most_common()}
    by_file = {f: w / total for f, w in files.most_common(8)}
    return rows, total, by_thread, by_file


def format_top(rows: list[tuple], total: float, threads: dict, files: dict) -> str:
    split = ", ".join(f"{t} {share:.0%}" for t, share in threads.items())
    per_file = ", ".join(f"{f} {share:.0%}" for f, share in files.items())
    lines = [
        f"{total:.1f} s sampled with the GIL held; by thread: {split}",
        f"own time by file: {per_file}",
        f"{'own':>6} {'total':>6}  function (file)",
    ]
    for own, inc, name, path in rows:
        lines.append(f"{own:6.1%} {inc:6.1%}  {name} ({path})")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench profile")
    p.add_argument("scenario", nargs="?", default="catalogue", choices=list(sc.SCENARIOS))
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--duration", type=float, default=15.0, help="seconds recorded, per format")
    p.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--safe", action="store_true")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    spy = py_spy()
    if spy is None:
        print(
            "py-spy is not installed: `.venv/bin/pip install -e '.[bench]'` "
            "(or `make bench`, which installs it)",
            file=sys.stderr,
        )
        return 2
    if args.workers > 1 and not serve_supports_workers():
        print("`python -m bot serve --workers` is not supported yet", file=sys.stderr)
        return 2
    PROFILES.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    base = PROFILES / f"{stamp}-{args.scenario}-{args.db}{'-safe' if args.safe else ''}"
    with Databases() as dbs:
        sink = Helper("sink", logdir=dbs.tmp).start()
        bot = BotServer(dbs.url(args.db), sink.url, workers=args.workers, safe=args.safe)
        try:
            bot.start()
            print(f"the bot (pid {bot.pid}) is up on {bot.url}; preparing {args.scenario}")
            return record(args, spy, bot, base)
        finally:
            bot.stop()
            sink.stop()
            bot.cleanup()


def record(args, spy: str, bot: BotServer, base: Path) -> int:
    ctx = sc.Context(bot, bot.url, connections=args.connections)
    scenario = sc.SCENARIOS[args.scenario]()
    for problem in scenario.prepare(ctx):
        print(f"preparing: {problem}")
    probe = sc.Catalogue().batch(ctx, "bot", 4000)
    rate = max(ctx.load("bot", probe.chains, seconds=2).rate, 20.0)
    outputs = {
        "speedscope": base.with_suffix(".speedscope.json"),
        "flamegraph": base.with_suffix(".svg"),
    }
    summary = []
    for fmt, out in outputs.items():
        batch = scenario.batch(ctx, "bot", size(rate, args.duration + 3, ctx))
        results: list = []

        def play(batch=batch, results=results) -> None:
            route = scenario.route
            seconds = args.duration + 2
            results.append(
                ctx.load("bot", batch.chains, seconds, route, scenario.cycle, route == "to")
            )

        load = threading.Thread(target=play)
        load.start()
        time.sleep(1)  # the load is on before recording starts
        cmd = [
            spy, "record", "--pid", str(bot.pid), "--gil", "--rate", str(args.rate),
            "--format", fmt, "--output", str(out), "--duration", f"{args.duration:.0f}",
        ]  # fmt: skip
        if args.workers > 1:
            cmd.append("--subprocesses")
        print(f"recording {fmt} for {args.duration:.0f} s: {' '.join(cmd[1:])}")
        spied = subprocess.run(cmd, capture_output=True, text=True)
        load.join()
        result = results[0] if results else None
        if spied.returncode != 0:
            print(f"py-spy failed ({spied.returncode}):\n{spied.stderr[-2000:]}", file=sys.stderr)
            return 1
        if result is not None:
            line = (
                f"{fmt}: under load {result.rate:.0f} msg/s, p50 {result.latency_ms['p50']:.1f} ms, "
                f"p99 {result.latency_ms['p99']:.1f} ms"
            )
            if result.problems() or result.exhausted:
                line += f"; problems: {result.problems() or ['the pool ran dry']}"
            print(line)
            summary.append(line)
    table = format_top(*top_functions(outputs["speedscope"], args.top))
    text = (
        f"python -m bench profile {args.scenario} --db {args.db}: py-spy record --gil "
        f"--rate {args.rate}, {args.duration:.0f} s per format\n" + "\n".join(summary)
        + f"\n\nTop {args.top} functions by own time:\n{table}\n"
    )  # fmt: skip
    base.with_suffix(".txt").write_text(text, encoding="utf-8")
    print(f"\nTop {args.top} functions by own time (share of samples with the GIL held):")
    print(table)
    print("\nwritten:")
    for path in [*outputs.values(), base.with_suffix(".txt")]:
        print(f"  {path.relative_to(ROOT)}")
    print("open the .speedscope.json at https://www.speedscope.app (or `npx speedscope FILE`)")
    return 0
