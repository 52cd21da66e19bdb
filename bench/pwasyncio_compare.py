"""Our database runner against peewee's own asyncio layer (`playhouse.pwasyncio`), on SQLite.

    python3 -m venv /tmp/pwa && /tmp/pwa/bin/pip install peewee==4.5.3 greenlet aiosqlite
    PYTHONPATH=. /tmp/pwa/bin/python -m bench.pwasyncio_compare [--messages 3000] [--tasks 16]

Each "message" is what the chat does per push, in SQL terms: one read by key, then one
transaction of four statements (the push record, the user's touch, the conversation, the
reply). Both sides use WAL, `synchronous=FULL` and the same statements on the same table
shape; `--tasks` coroutines send messages at once, as the callback's requests do. Printed:
messages per second and the mean CPU time per message of this process (what competes with
Tornado for the one core).

pwasyncio runs every statement through aiosqlite, which hands each one to its connection's
thread and back (a hop per statement) and commits per transaction; our runner reads on the
loop (a WAL reader never waits) and runs the writes waiting when its writer is free, on the
loop too, in one transaction whose COMMIT (the fsync) waits in a thread: a group commit.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import peewee

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS item (key TEXT PRIMARY KEY, n INTEGER NOT NULL, body TEXT)",
]
READ = "SELECT n, body FROM item WHERE key = ?"
WRITES = [
    ("INSERT INTO item (key, n, body) VALUES (?, 0, 'push')", "p"),
    ("INSERT INTO item (key, n, body) VALUES (?, 1, 'user') "
     "ON CONFLICT(key) DO UPDATE SET n = n + 1", "u"),
    ("INSERT INTO item (key, n, body) VALUES (?, 1, 'conversation') "
     "ON CONFLICT(key) DO UPDATE SET n = n + 1, body = 'step'", "c"),
    ("UPDATE item SET body = 'reply' WHERE key = ?", "p"),
]  # fmt: skip
PRAGMAS = [("journal_mode", "wal"), ("synchronous", "full")]


async def ours(path: Path, messages: int, tasks: int) -> None:
    from storage import db as storage
    from storage.runner import Runner

    storage.connect(f"sqlite:///{path}")
    for sql in SCHEMA:
        storage.db.execute_sql(sql)
    runner = Runner.for_database(threads=4)

    def write(i: int) -> None:
        for sql, prefix in WRITES:
            storage.db.execute_sql(sql, (f"{prefix}{i}",))

    async def message(i: int) -> None:
        await runner.run(lambda: storage.db.execute_sql(READ, (f"u{i % 100}",)).fetchone())
        await runner.write(write, i)

    await _drive(message, messages, tasks)
    runner.close()
    storage.db.close()


async def pwasyncio(path: Path, messages: int, tasks: int) -> None:
    from playhouse.pwasyncio import AsyncSqliteDatabase

    db = AsyncSqliteDatabase(str(path), pragmas=PRAGMAS, pool_size=tasks)
    for sql in SCHEMA:
        await db.aexecute_sql(sql)

    async def message(i: int) -> None:
        await db.aexecute_sql(READ, (f"u{i % 100}",))
        async with db.atomic():
            for sql, prefix in WRITES:
                await db.aexecute_sql(sql, (f"{prefix}{i}",))

    await _drive(message, messages, tasks)
    await db.close_pool()


async def _drive(message, messages: int, tasks: int) -> None:
    counter = iter(range(messages))

    async def worker() -> None:
        for i in counter:
            await message(i)

    await asyncio.gather(*(worker() for _ in range(tasks)))


def measure(name: str, fn, messages: int, tasks: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.db"
        wall, cpu = time.perf_counter(), time.process_time()
        asyncio.run(fn(path, messages, tasks))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return messages / wall, cpu / messages * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=3000)
    p.add_argument("--tasks", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    print(f"peewee {peewee.__version__}; {args.messages} messages, {args.tasks} at once")
    print("| path | msg/s (median) | CPU µs per message (median) |\n| --- | --- | --- |")
    for name, fn in (("storage.runner", ours), ("playhouse.pwasyncio", pwasyncio)):
        runs = sorted(measure(name, fn, args.messages, args.tasks) for _ in range(args.rounds))
        rates = sorted(r for r, _ in runs)
        cpus = sorted(c for _, c in runs)
        print(f"| {name} | {rates[len(rates) // 2]:.0f} | {cpus[len(cpus) // 2]:.0f} |")


if __name__ == "__main__":
    main()
