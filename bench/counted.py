"""`python -m bench.counted FILE -- <bot arguments>`: the bot, counting its database round trips.

Every `execute` on a database cursor is one round trip to the server (PostgreSQL; on SQLite a
call into the library), and its SQL holds one or more statements. The counts are kept per
kind of work, from the job the database runner is running: `message` (the callback's
transaction, a page's reads) or `background` (the outbox, expiry, draws, pruning). On SIGUSR1
the counts so far are written to FILE as JSON; bench/roundtrips.py reads them before and after
a scenario's messages. With GIFTBOT_COUNT_LOG=PATH each of the message path's round trips is
also appended to PATH (the time it took and its SQL's first 150 characters; GIFTBOT_COUNT_LOG_WIDTH=N keeps N).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import Counter

import peewee

BACKGROUND = {"release_expired", "draw_due", "send_due", "prune", "sweep"}
JOBS = {"_in_transaction", "_fresh", "_attempts"}  # storage/runner.py's frames that hold `fn`
LOG = os.environ.get("GIFTBOT_COUNT_LOG")  # the message path's SQL, a line each, to read
WIDTH = int(os.environ.get("GIFTBOT_COUNT_LOG_WIDTH", "150"))  # characters of each kept
counts: Counter = Counter()
_lock = threading.Lock()


def _kind() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name in JOBS and "fn" in frame.f_locals:
            fn = frame.f_locals["fn"]
            name = getattr(fn, "__name__", "")
            module = getattr(fn, "__module__", "") or ""
            outside = module.startswith("bot.outgoing") or name in BACKGROUND
            return "background" if outside else "message"
        frame = frame.f_back
    return "other"  # start-up, migrations, health checks


class Counted:
    """A cursor that counts what it sends, and is the cursor in every other respect."""

    def __init__(self, cursor):
        self._cursor = cursor

    def execute(self, sql, *args, **kwargs):
        kind = _kind()
        statements = len([part for part in str(sql).split(";") if part.strip()])
        started = time.perf_counter()
        try:
            return self._cursor.execute(sql, *args, **kwargs)
        finally:
            ms = (time.perf_counter() - started) * 1000
            with _lock:
                counts[f"{kind} round trips"] += 1
                counts[f"{kind} statements"] += statements
                counts[f"{kind} ms"] += ms
                if LOG and kind == "message":
                    with open(LOG, "a") as log:
                        text = sql.decode() if isinstance(sql, bytes) else str(sql)
                        log.write(f"{ms:7.2f} ms  " + " ".join(text.split())[:WIDTH] + "\n")

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def __iter__(self):
        return iter(self._cursor)


def install() -> None:
    for cls in (peewee.Database, peewee.PostgresqlDatabase):
        original = cls.__dict__.get("cursor")
        if original is None:
            continue

        def cursor(self, *args, _original=original, **kwargs):
            return Counted(_original(self, *args, **kwargs))

        cls.cursor = cursor


def main() -> None:
    path, rest = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]

    def dump(*_):
        with _lock:
            snapshot = dict(counts)
        with open(path, "w") as f:
            json.dump(snapshot, f)

    signal.signal(signal.SIGUSR1, dump)
    install()
    from handlers.cli import main as bot_main

    sys.exit(bot_main(rest))


if __name__ == "__main__":
    main()
