"""`python -m bench roundtrips [--db sqlite|postgres|both] [--messages 200]`: database round trips
and statements per message, per scenario, counted inside the bot (bench/counted.py).

The bot runs as in a benchmark, wrapped so that every cursor `execute` is counted; each
scenario's seeding goes first, then its measured messages one after another (the same texts
as the load's), and the counts of the message path are divided by the messages. The
background work (the outbox sending a claim's SMS and notice, expiry, pruning) is counted
apart. A user is touched (`last_seen`) at most once a minute per process: the first message
of each user pays for it, so users send a first message before the measured ones, as in
the load's steady state.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time

from bench import scenarios as sc
from bench.server import (
    PYTHON,
    BotServer,
    Databases,
    Helper,
    Proc,
    http_get,
    http_post,
    pg_sessions_cpu_ms,
    tree_cpu_ms,
)
from bench.wire import Wire

TOKEN_RE = re.compile(r"/claim/([A-Za-z0-9_-]{20,64})")


class Counting:
    def __init__(self, bot: BotServer):
        self.bot = bot
        self.file = bot.dir / "counts.json"
        cmd = [PYTHON, "-m", "bench.counted", str(self.file), "--", "serve", "--config",
               str(bot.config_path)]  # fmt: skip
        bot.proc = Proc("the bot", cmd, bot.log, f"{bot.url}/healthz").start()
        self.wire = Wire(bot.token, bot.config["wechat"]["app_id"], bot.url.split("://", 1)[1])
        self.ids = iter(range(sc.MSG_ID_BASE + int(time.time() * 1e6), 10**19))

    def counts(self) -> dict[str, int]:
        os.kill(self.bot.pid, signal.SIGUSR1)
        time.sleep(0.3)  # the handler runs on the loop's next turn
        return json.loads(self.file.read_text())

    def say(self, openid: str, text: str) -> str:
        raw = self.wire.text_push(openid, text, next(self.ids))
        head, body = raw.split(b"\r\n\r\n", 1)
        path = head.split(b" ")[1].decode()
        status, reply = http_post(self.bot.url + path, body)
        if status != 200:
            raise RuntimeError(f"{text!r} answered {status}: {reply[:300]!r}")
        return reply.decode()

    def measure(self, send, n: int) -> dict[str, float]:
        time.sleep(1.5)  # let the outbox settle what seeding left
        before = self.counts() | self.cpu()
        for i in range(n):
            send(i)
        busy = self.cpu()  # before the outbox's sends: the messages' own CPU
        time.sleep(2.5)  # the outbox sends what the messages queued
        after = self.counts() | busy
        return {k: (after.get(k, 0) - before.get(k, 0)) / n for k in after}

    def cpu(self) -> dict[str, float]:
        """CPU ms the bot and its PostgreSQL sessions have used so far."""
        return {
            "bot cpu ms": tree_cpu_ms(self.bot.pid),
            "postgres cpu ms": pg_sessions_cpu_ms(self.bot.db_url),
        }


def share_tokens(c: Counting, shares: int, tag: str) -> list[str]:
    tokens = []
    for i in range(shares):
        giver = f"o_rt_giver_{tag}_{i}"
        for text, _ in sc.GIVER_STEPS:
            c.say(giver, text)
        tokens.append(TOKEN_RE.search(c.say(giver, "确认")).group(1))
    return tokens


def run(db_kind: str, n: int) -> dict[str, dict[str, float]]:
    out = {}
    with Databases() as dbs:
        sink = Helper("sink", logdir=dbs.tmp).start()
        bot = BotServer(dbs.url(db_kind), sink.url)
        c = Counting(bot)
        try:
            users = [f"o_rt_cat_{i}" for i in range(20)]
            for u in users:
                c.say(u, "礼品")
            out["catalogue"] = c.measure(lambda i: c.say(users[i % 20], "礼品"), n)

            form_users = [f"o-rt-fs-{i}" for i in range(n)]
            for u in form_users:
                for text in ("礼品", "1", "送"):
                    c.say(u, text)
            out["form-step"] = c.measure(lambda i: c.say(form_users[i], "1"), n)

            claims = max(2, n // 6)
            tokens = share_tokens(c, -(-claims // sc.UNITS_PER_SHARE), "c")
            recipients = [f"o-rt-cr-{i}" for i in range(claims)]
            for r in recipients:
                c.say(r, "帮助")  # the first message of a user: touched

            def claim(i: int) -> None:
                r = recipients[i]
                c.say(r, f"领取 {tokens[i // sc.UNITS_PER_SHARE]}")
                for text, expect in sc.RECIPIENT_STEPS:
                    if expect not in (reply := c.say(r, text)):
                        raise RuntimeError(f"{text!r} got {reply[:300]!r}")

            per_claim = c.measure(claim, claims)
            out["claim"] = {k: v / (1 + len(sc.RECIPIENT_STEPS)) for k, v in per_claim.items()}

            page_tokens = share_tokens(c, 2, "p")
            visitors = [f"o_rt_visit_{i}" for i in range(20)]
            cookies = [sc.Page.cookie(c, v) for v in visitors]
            for i, cookie in enumerate(cookies):  # each visitor's first visit is recorded
                http_get(f"{bot.url}/claim/{page_tokens[i % 2]}", headers={"Cookie": cookie})

            def page(i: int) -> None:
                url = f"{bot.url}/claim/{page_tokens[i % 20 % 2]}"
                status, _ = http_get(url, headers={"Cookie": cookies[i % 20]})
                if status != 200:
                    raise RuntimeError(f"the claim page answered {status}")

            out["page"] = c.measure(page, n)
        finally:
            bot.stop()
            sink.stop()
            bot.cleanup()
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench roundtrips")
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--messages", type=int, default=120)
    args = p.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print("| scenario | db | round trips / message | statements / message "
          "| ms in them / message | bot CPU ms / message | PostgreSQL CPU ms / message "
          "| background round trips / message |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in kinds:
        for name, counts in run(kind, args.messages).items():
            print(
                f"| {name} | {kind} | {counts.get('message round trips', 0):.2f} "
                f"| {counts.get('message statements', 0):.2f} "
                f"| {counts.get('message ms', 0):.2f} "
                f"| {counts.get('bot cpu ms', 0):.2f} | {counts.get('postgres cpu ms', 0):.2f} "
                f"| {counts.get('background round trips', 0):.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
