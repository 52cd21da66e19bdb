"""One benchmark run: for each database and worker count, the bot and the bare handler,
scenario by scenario, alternating (bare, bot, bare, bot …), then the checks; after a
scenario's rounds, one more bot run paced at `paced` × its median rate (latency below
full load).

Usage::

    rows, sections = run(Options(scenarios=["catalogue"], dbs=["sqlite"], duration=10))
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

from bench import scenarios as sc
from bench.report import Row, plain_table
from bench.server import (
    APP_ID,
    BotServer,
    Databases,
    Helper,
    RssSampler,
    pg_sessions_cpu_ms,
    serve_supports_workers,
    tree_cpu_ms,
    tree_hwm_kib,
    tree_rss_kib,
)

BARE_GUESS = 8000.0  # msg/s, before the first bare run; a pool that runs dry is redone bigger
MARGIN = 1.5  # requests prepared per request expected


@dataclass
class Options:
    scenarios: list[str]
    dbs: list[str]
    workers: list[int] = field(default_factory=lambda: [1])
    duration: float = 10.0
    warmup: float = 2.0
    rounds: int = 3
    users: int = 1000
    connections: int = 16
    threads: int = 1
    safe: bool = False
    big: bool = False
    big_scale: float = 1.0
    memory: bool = False
    memory_messages: int = 100_000
    memory_every: int = 10_000
    memory_scenario: str = "catalogue"
    paced: float = 0.7  # after the rounds, a bot run at this fraction of their median rate; 0: none


def say(text: str) -> None:
    print(text, flush=True)


def run(opts: Options) -> tuple[list[Row], list[str]]:
    """Every group; the table rows and extra report sections (seeding, memory)."""
    rows: list[Row] = []
    sections: list[str] = []
    workers_ok = any(w > 1 for w in opts.workers) and serve_supports_workers()
    with Databases() as dbs:
        for kind in opts.dbs:
            for workers in opts.workers:
                if workers > 1 and not workers_ok:
                    say(f"[{kind}, {workers} workers] `python -m bot serve --workers` "
                        "is not supported yet: skipped")  # fmt: skip
                    rows += [
                        Row(name, kind, workers, note="not supported yet")
                        for name in opts.scenarios
                    ]
                    continue
                group_rows, group_sections = [], []
                try:
                    run_group(opts, dbs, kind, workers, group_rows, group_sections)
                except Exception as exc:  # keep what was measured; say what stopped the group
                    reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
                    say(f"[{kind}, {workers}] stopped by {reason}")
                    done = {r.scenario for r in group_rows}
                    group_rows += [
                        Row(name, kind, workers, note=f"not run: {reason}", problems=[reason])
                        for name in opts.scenarios
                        if name not in done
                    ]
                rows += group_rows
                sections += group_sections
    return rows, sections


def run_group(opts: Options, dbs: Databases, kind: str, workers: int, rows: list, sections: list):
    """Measure every scenario on one database; rows and sections are filled as they come."""
    label = f"[{kind}, {workers} worker{'s' if workers > 1 else ''}]"
    db_url = dbs.url(kind)
    sink = Helper("sink", logdir=dbs.tmp).start()
    bot = BotServer(db_url, sink.url, workers=workers, safe=opts.safe)
    bare = Helper(
        "bare", "--aes-key", bot.aes_key, "--app-id", APP_ID, "--token", bot.token,
        logdir=bot.dir,
    ).start()  # fmt: skip
    try:
        say(f"{label} starting the bot on {bot.url} ({'safe mode' if opts.safe else 'plaintext'})")
        bot.start()
        if opts.big:
            sections.append(seed_big(opts, bot, label))
        ctx = sc.Context(bot, bare.url, opts.users, opts.connections, opts.threads, bare.pid)
        for name in opts.scenarios:
            rows.append(measure(ctx, sc.SCENARIOS[name](), opts, kind, workers, label))
            row = rows[-1]
            say(f"{label} {name}: bot {statistics.median(row.bot):.0f} msg/s, bare "
                f"{statistics.median(row.bare):.0f} msg/s, ratio "
                f"{statistics.median(row.ratios):.3f}, checks "
                f"{'ok' if not row.problems else 'FAILED'}")  # fmt: skip
            for problem in row.problems[:8]:
                say(f"    {problem[:1500]}")
        if opts.memory:
            sections.append(memory(ctx, opts, label))
        hwm = tree_hwm_kib(bot.pid)
        say(f"{label} the bot's processes peaked at {hwm / 1024:.0f} MiB (VmHWM, summed)")
    finally:
        code = bot.stop()
        if code not in (0, None):
            say(f"{label} the bot exited with {code} on SIGTERM; log tail:\n{bot.proc.tail(1500)}")
        bare.stop()
        sink.stop()
        bot.cleanup()


def seed_big(opts: Options, bot: BotServer, label: str) -> str:
    from bench.seed import seed

    scale = opts.big_scale
    n = {"orders": int(10**6 * scale), "users": int(10**5 * scale), "inbound": int(10**6 * scale)}
    say(f"{label} --big: stopping the bot to seed {n['orders']} orders, {n['users']} users, "
        f"{n['inbound']} inbound messages")  # fmt: skip
    bot.stop()
    done = seed(bot.db_url, **n)
    say(f"{label} seeded in {done['seconds']} s; starting the bot again")
    bot.start()
    rows = ", ".join(f"{k} {v}" for k, v in done.items() if k != "seconds")
    return f"{label} --big seeding: {rows} rows in {done['seconds']} s before the scenarios."


def size(rate: float, seconds: float, ctx: sc.Context) -> int:
    return math.ceil(rate * seconds * MARGIN) + 4 * ctx.connections


def settle(ctx: sc.Context, wait_outbox: bool = False) -> None:
    """Let the bot finish what the last run left in flight (and, after claims, its outbox)."""
    time.sleep(0.5)
    if not wait_outbox:
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not outbox_pending(ctx):
            return
        time.sleep(0.5)


def cpu_now(ctx: sc.Context) -> tuple[float, float]:
    """CPU ms so far of the bot's process tree and of its PostgreSQL sessions (0 on SQLite)."""
    return tree_cpu_ms(ctx.bot.pid), pg_sessions_cpu_ms(ctx.bot.db_url)


def cpu_since(ctx: sc.Context, started: tuple[float, float]) -> tuple[float, float]:
    now = cpu_now(ctx)
    return now[0] - started[0], now[1] - started[1]


def outbox_pending(ctx: sc.Context) -> int:
    """Outbox rows not sent yet: a whole claim's SMS and notice, queued by its messages."""
    query = ('SELECT COUNT(*) FROM "outbox" WHERE "status" = ?', ["pending"])
    return sc.db_counts(ctx.bot.db_url, {"due": query})["due"]


def estimate(ctx: sc.Context, scenario: sc.Scenario, target: str, est: dict, opts) -> float:
    """msg/s to size the first pool of `target` in this scenario."""
    if target == "bare":
        return est.get("bare") or ctx.bare_hint or BARE_GUESS
    if not scenario.stateful:
        return est.get("bare") or BARE_GUESS
    hint = ctx.bot_hint
    if hint is None:
        probe = sc.Catalogue().batch(ctx, "bot", 4000)
        result = ctx.load("bot", probe.chains, seconds=2)
        hint = ctx.bot_hint = max(result.rate, 20.0)
    return hint


def measure(ctx: sc.Context, scenario: sc.Scenario, opts: Options, kind, workers, label) -> Row:
    row = Row(scenario.name, kind, workers, unit=scenario.unit)
    row.problems += [f"preparing: {p}" for p in scenario.prepare(ctx)]
    est: dict[str, float] = {}
    for rnd in range(1, opts.rounds + 1):
        rates = {}
        for target in ("bare", "bot"):
            result, problems, facts, peak = one_run(ctx, scenario, target, opts, est)
            rates[target] = result.rate
            if target == "bare":
                row.bare.append(result.rate)
                ctx.bare_hint = result.rate
                row.problems += [f"round {rnd}, bare: {p}" for p in problems]
                continue
            row.bot.append(result.rate)
            row.p50.append(result.latency_ms["p50"])
            row.p99.append(result.latency_ms["p99"])
            row.peak_rss_kib = max(row.peak_rss_kib, peak)
            if scenario.unit:
                row.units.append(result.script.get("chains_done", 0) / result.seconds)
            row.facts = facts
            row.problems += [f"round {rnd}, bot: {p}" for p in problems]
            if not scenario.stateful:
                ctx.bot_hint = ctx.bot_hint or result.rate
        row.ratios.append(rates["bot"] / rates["bare"] if rates["bare"] else float("nan"))
        if whole := row.facts.get("bot CPU µs/reply with its sends"):
            row.with_sends.append(row.ratios[-1] * row.facts["bot CPU µs/reply"] / whole)
        say(f"{label} {scenario.name} round {rnd}/{opts.rounds}: bare {rates['bare']:.0f} msg/s, "
            f"bot {rates['bot']:.0f} msg/s (p50 {row.p50[-1]:.1f} ms, p99 {row.p99[-1]:.1f} ms), "
            f"{'; '.join(f'{k} {v}' for k, v in row.facts.items())}")  # fmt: skip
    if opts.paced > 0:
        paced(ctx, scenario, opts, row, est, label)
    return row


def paced(ctx: sc.Context, scenario: sc.Scenario, opts: Options, row: Row, est: dict, label):
    """One more bot run, same warm-up and length, paced at `opts.paced` × the rounds' median."""
    asked = opts.paced * statistics.median(row.bot) if row.bot else 0.0
    if asked < 1:
        say(f"{label} {scenario.name} paced: no rate to pace at (bot {asked:.1f} msg/s): skipped")
        return
    result, problems, _facts, peak = one_run(ctx, scenario, "bot", opts, est, pace=asked)
    row.paced_asked = asked
    row.paced_rate = result.rate
    row.paced_p50 = result.latency_ms["p50"]
    row.paced_p99 = result.latency_ms["p99"]
    row.peak_rss_kib = max(row.peak_rss_kib, peak)
    row.problems += [f"paced run, bot: {p}" for p in problems]
    say(f"{label} {scenario.name} paced at {opts.paced * 100:.0f}%: asked {asked:.0f} msg/s, "
        f"got {result.rate:.0f} msg/s ({result.rate / asked - 1:+.1%}), "
        f"p50 {row.paced_p50:.1f} ms, p99 {row.paced_p99:.1f} ms "
        f"(full load: p50 {statistics.median(row.p50):.1f} ms, "
        f"p99 {statistics.median(row.p99):.1f} ms)")  # fmt: skip
    if result.rate < 0.9 * asked:
        say(f"    the bot fell behind the schedule ({result.rate:.0f} of {asked:.0f} msg/s): "
            "it was saturated at this rate (a busy machine?)")  # fmt: skip


def one_run(
    ctx: sc.Context, scenario: sc.Scenario, target: str, opts: Options, est: dict, pace: float = 0
):
    """Warm-up, then the measured run; a pool that ran dry is prepared again, twice as big.

    `pace` > 0 (msg/s) paces both; the pools are then sized for that rate."""
    rate = pace or est.get(target) or estimate(ctx, scenario, target, est, opts)
    route = scenario.route if target == "bot" else "fifo"
    aes = scenario.route == "to"
    problems: list[str] = []
    for _attempt in range(4):
        if opts.warmup > 0:
            warm = scenario.batch(ctx, target, size(rate, opts.warmup, ctx))
            problems += [f"seeding: {p}" for p in warm.seeding]
            result = ctx.load(target, warm.chains, opts.warmup, route, scenario.cycle, aes, pace)
            problems += [f"warm-up: {p}" for p in result.problems()]
        batch = scenario.batch(ctx, target, size(rate, opts.duration, ctx))
        problems += [f"seeding: {p}" for p in batch.seeding]
        settle(ctx, wait_outbox=scenario.name == "claim")
        offset = ctx.bot.log_offset()
        # Both targets are sampled alike, so that the harness's own work is the same for both.
        sampler = RssSampler(ctx.bot.pid if target == "bot" else ctx.bare_pid)
        started = cpu_now(ctx)
        with sampler:
            result = ctx.load(target, batch.chains, opts.duration, route, scenario.cycle, aes, pace)
        cpu = cpu_since(ctx, started)
        if result.exhausted and not scenario.cycle:
            rate = max(rate, result.rate) * 2
            say(f"    the pool of {len(batch.chains)} chains ran dry: again with twice as many")
            continue
        break
    if not pace:
        est[target] = result.rate
    problems += result.problems()
    if result.exhausted and not scenario.cycle:
        problems.append("the request pool ran dry four times: not a steady measurement")
    facts: dict = {}
    peak = 0
    if target == "bot":
        peak = sampler.peak_kib
        sends = scenario.name == "claim"  # its SMS and notices: the outbox's work
        behind = outbox_pending(ctx) if sends else 0
        settle(ctx, wait_outbox=sends)
        found, facts = scenario.check(ctx, batch, result)
        facts["slowest reply ms"] = round(result.latency_ms["max"])
        replies = max(result.ok, 1)  # CPU per reply: the bot's process tree, its PG sessions
        facts["bot CPU µs/reply"] = round(cpu[0] * 1000 / replies)
        if cpu[1]:
            facts["PostgreSQL CPU µs/reply"] = round(cpu[1] * 1000 / replies)
        if sends:  # what the window's messages cost once the outbox has sent all they queued
            whole = cpu_since(ctx, started)
            facts["outbox rows left at the end"] = behind
            facts["bot CPU µs/reply with its sends"] = round(whole[0] * 1000 / replies)
            if cpu[1]:
                facts["PostgreSQL CPU µs/reply with its sends"] = round(whole[1] * 1000 / replies)
        problems += found
        logged = ctx.bot.log_problems(offset)
        if logged:
            problems.append("the bot logged " + ", ".join(f"{v} {k}" for k, v in logged.items()))
            excerpt = ctx.bot.log_excerpt(offset) or ctx.bot.log_excerpt(offset, '"error"')
            if excerpt:
                problems.append("log excerpt:\n" + excerpt)
    if problems and result.evidence:
        problems.append("first bad replies:\n" + result.evidence[:3000])
    return result, problems, facts, peak


def memory(ctx: sc.Context, opts: Options, label: str) -> str:
    """Send `memory_messages` in chunks of `memory_every`; the tree's RSS after each chunk."""
    scenario = sc.SCENARIOS[opts.memory_scenario]()
    problems = scenario.prepare(ctx)
    route = scenario.route
    pid = ctx.bot.pid
    start_kib = tree_rss_kib(pid)
    table = [["0", f"{start_kib / 1024:.1f}", "", "", "", ""]]
    sent = 0
    say(f"{label} --memory: {opts.memory_messages} {scenario.name} messages, "
        f"RSS every {opts.memory_every}")  # fmt: skip
    after_first = None
    with RssSampler(pid) as sampler:
        while sent < opts.memory_messages:
            n = min(opts.memory_every, opts.memory_messages - sent)
            batch = scenario.batch(ctx, "bot", n)
            problems += batch.seeding
            offset = ctx.bot.log_offset()
            result = ctx.load("bot", batch.chains, None, route, False, route == "to")
            sent += result.ok
            settle(ctx, wait_outbox=scenario.name == "claim")
            found, _ = scenario.check(ctx, batch, result)
            problems += result.problems() + found
            logged = ctx.bot.log_problems(offset)
            if logged:
                problems.append(
                    "the bot logged " + ", ".join(f"{v} {k}" for k, v in logged.items())
                )
            rss = tree_rss_kib(pid)
            after_first = after_first or rss
            table.append([
                str(sent), f"{rss / 1024:.1f}", f"{sampler.peak_kib / 1024:.1f}",
                f"{result.rate:.0f}", f"{result.latency_ms['p50']:.1f}",
                f"{result.latency_ms['p99']:.1f}",
            ])  # fmt: skip
            say(f"    {sent} messages: RSS {rss / 1024:.1f} MiB, {result.rate:.0f} msg/s")
            if not result.ok:
                problems.append("a chunk got no good reply: stopped")
                break
    head = ["messages", "RSS MiB", "peak MiB", "msg/s", "p50 ms", "p99 ms"]
    growth = (rss - start_kib) / 1024
    steady = (rss - after_first) / 1024
    text = (
        f"{label} memory over {sent} `{scenario.name}` messages: {growth:+.1f} MiB in all, "
        f"{steady:+.1f} MiB after the first {opts.memory_every} "
        f"({steady * 1024 / max(sent - opts.memory_every, 1) * 1000:.1f} KiB per 1000 messages)."
        f"\n\n```\n{plain_table(table, head)}\n```"
    )
    if problems:
        text += "\n\nProblems:\n" + "\n".join(f"- {p}" for p in problems[:20])
    say(text)
    return text
