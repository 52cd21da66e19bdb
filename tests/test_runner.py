"""The one way to the database from async code (storage/runner.py), on its own: SQLite's
group-committing writer keeps each job's work apart, hands results back only once they are
durable, and runs `after_commit` work only after the COMMIT; on PostgreSQL a read waiting on
a lock never holds the event loop (the 1.7 s /healthz stall of issue 14)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import peewee
import pytest
import requests
from helpers import BOTH_DATABASES, share_in_chat

from storage import db as storage
from storage.loop import await_
from storage.models import User, utcnow
from storage.runner import Retry, Runner


@pytest.fixture
def sqlite_runner(tmp_path):
    path = tmp_path / "runner.db"
    storage.connect(f"sqlite:///{path}")
    storage.migrate()
    runner = Runner.for_database(threads=2)
    yield runner, path
    runner.close()
    storage.db.close()


@pytest.fixture
def runner(db_url):
    """The runner that suits the database: SQLite's group-committing writer, or PostgreSQL's
    pool of transactions."""
    storage.connect(db_url)
    storage.migrate()
    runner = Runner.for_database(threads=2)
    yield runner
    runner.close()
    storage.db.close()


def hold(release: asyncio.Event) -> None:
    """In a write job: wait (5 s at most) until `release` is set, the job's transaction open and
    the loop going on meanwhile (storage.loop.await_): the writer stays busy with this job."""
    await_(asyncio.wait_for(release.wait(), 5))


def add_user(openid: str) -> str:
    User.insert(openid=openid, first_seen=utcnow(), last_seen=utcnow()).execute()
    return openid


def test_jobs_sharing_one_commit_are_undone_one_by_one(sqlite_runner):
    runner, path = sqlite_runner
    seen_after_commit: list[bool] = []

    def kept(openid):
        add_user(openid)

        def check():  # from another connection: the row is durable when this runs
            with sqlite3.connect(path) as other:
                count = other.execute('SELECT count(*) FROM "user" WHERE openid = ?', (openid,))
                seen_after_commit.append(count.fetchone()[0] == 1)

        storage.after_commit(check)
        return openid

    def failing(openid):
        add_user(openid)
        storage.after_commit(lambda: seen_after_commit.append("never"))
        raise ValueError("this job fails")

    async def main():
        release = asyncio.Event()  # the writer busy with a batch, the next jobs queue up
        held = asyncio.ensure_future(runner.write(hold, release))
        await asyncio.sleep(0.05)
        jobs = [runner.write(kept, "o_a"), runner.write(failing, "o_b"), runner.write(kept, "o_c")]
        gathered = asyncio.gather(*jobs, return_exceptions=True)
        await asyncio.sleep(0.05)
        release.set()
        await held
        return await gathered

    a, b, c = asyncio.run(main())
    assert (a, c) == ("o_a", "o_c") and isinstance(b, ValueError)
    assert sorted(u.openid for u in User.select()) == ["o_a", "o_c"], "only the failed job undone"
    assert seen_after_commit == [True, True], "after the COMMIT, and never for the failed job"


@BOTH_DATABASES
def test_a_job_that_meets_a_concurrent_change_runs_again_from_its_start(runner):
    tries = []

    def job():
        tries.append(add_user(f"o_try{len(tries)}"))
        if len(tries) < 3:
            raise Retry
        return len(tries)

    assert asyncio.run(runner.write(job)) == 3
    assert [u.openid for u in User.select()] == ["o_try2"], "the lost tries left nothing"


@BOTH_DATABASES
def test_a_job_that_always_meets_a_change_fails_alone_and_its_batch_commits(runner):
    tries = []

    def always_changed():
        tries.append(add_user(f"o_try{len(tries)}"))
        raise Retry("the share changed again")

    async def main():
        release = asyncio.Event()
        held = asyncio.ensure_future(runner.write(hold, release))
        await asyncio.sleep(0.05)
        jobs = [runner.write(add_user, "o_a"), runner.write(always_changed),
                runner.write(add_user, "o_b")]  # fmt: skip
        gathered = asyncio.gather(*jobs, return_exceptions=True)
        await asyncio.sleep(0.05)
        release.set()
        await held
        return await asyncio.wait_for(gathered, 10)

    a, lost, b = asyncio.run(main())
    assert (a, b) == ("o_a", "o_b") and isinstance(lost, Retry)
    assert len(tries) == 3, "three tries in all, then it gives up"
    assert sorted(u.openid for u in User.select()) == ["o_a", "o_b"]


@BOTH_DATABASES
def test_a_write_whose_waiter_gave_up_leaves_the_others_settled(runner):
    """A request cancelled while its write waits in a batch (a client gone): every other job
    of that batch gets its answer."""

    async def main():
        release = asyncio.Event()
        held = asyncio.ensure_future(runner.write(hold, release))
        await asyncio.sleep(0.05)
        first = asyncio.ensure_future(runner.write(add_user, "o_first"))
        given_up = asyncio.ensure_future(runner.write(add_user, "o_gone"))
        last = asyncio.ensure_future(runner.write(add_user, "o_last"))
        await asyncio.sleep(0.05)
        given_up.cancel()
        release.set()
        await held
        return await asyncio.wait_for(asyncio.gather(first, last), 5)

    assert asyncio.run(main()) == ["o_first", "o_last"]
    users = {u.openid for u in User.select()}  # a write cancelled before it started (a pool's)
    assert {"o_first", "o_last"} <= users <= {"o_first", "o_gone", "o_last"}  # may not happen


def test_closing_while_a_batch_is_gathered_finishes_it_and_returns(sqlite_runner):
    """Shutdown while writes are queued behind a busy writer: close(), from another thread,
    waits for the writer to run them all, then returns."""
    runner, _ = sqlite_runner

    async def main():
        release = asyncio.Event()
        held = asyncio.ensure_future(runner.write(hold, release))
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(runner.write(add_user, f"o_{n}")) for n in range(3)]
        await asyncio.sleep(0.05)
        closing = threading.Thread(target=runner.close, daemon=True)
        closing.start()
        await asyncio.sleep(0.05)
        release.set()
        await held
        done = await asyncio.wait_for(asyncio.gather(*queued), 5)
        await asyncio.get_running_loop().run_in_executor(None, closing.join, 5)
        return done, closing.is_alive()

    done, still_closing = asyncio.run(main())
    assert done == ["o_0", "o_1", "o_2"] and not still_closing, "close() returned"
    assert sorted(u.openid for u in User.select()) == ["o_0", "o_1", "o_2"]


@BOTH_DATABASES
def test_close_waits_for_the_writes_in_flight(runner):
    """Shutdown while a write is under way: close() returns only once it is committed. The
    write is slow (its jobs run on the loop, where only a wait for the database, or one handed
    to the loop, lets the loop go on)."""
    postgres = storage.is_postgres()

    def slow_write():
        add_user("o_during")
        if postgres:
            storage.db.execute_sql("SELECT pg_sleep(0.6)")
        else:
            await_(asyncio.sleep(0.6))
        return "done"

    async def main():
        writing = asyncio.ensure_future(runner.write(slow_write))
        await asyncio.sleep(0.1)
        closing = threading.Thread(target=runner.close, daemon=True)
        closing.start()
        await asyncio.sleep(0.3)
        waited = closing.is_alive()
        result = await asyncio.wait_for(writing, 5)
        await asyncio.get_running_loop().run_in_executor(None, closing.join, 5)
        return waited, result, closing.is_alive()

    waited, result, still_closing = asyncio.run(main())
    assert waited, "close() waited for the write"
    assert result == "done" and not still_closing
    assert [u.openid for u in User.select()] == ["o_during"]


def test_writes_waiting_together_share_one_commit_of_at_most_64(sqlite_runner):
    """Group commit: the writes queued while the writer was busy are made durable by one
    COMMIT (one fsync), not one each; a longer queue by one COMMIT per 64."""
    runner, _ = sqlite_runner
    statements: list[str] = []

    def watch_and_hold(release: asyncio.Event):  # the writer's connection: its statements now
        storage.db.connection().set_trace_callback(statements.append)
        hold(release)

    async def main(count: int):
        release = asyncio.Event()
        held = asyncio.ensure_future(runner.write(watch_and_hold, release))
        await asyncio.sleep(0.05)
        gathered = asyncio.gather(*[runner.write(add_user, f"o_{count}_{n}") for n in range(count)])
        await asyncio.sleep(0.05)
        release.set()
        await held
        return await asyncio.wait_for(gathered, 5)

    def batches() -> list[int]:
        """The INSERTs each COMMIT made durable, in order."""
        sizes, inserts = [], 0
        for statement in statements:
            inserts += statement.lstrip().upper().startswith("INSERT")
            if statement.strip().upper().startswith("COMMIT"):
                sizes.append(inserts)
                inserts = 0
        return sizes

    assert len(asyncio.run(main(5))) == 5
    assert batches() == [0, 5], statements  # the held job's COMMIT, then the five's
    statements.clear()
    assert len(asyncio.run(main(70))) == 70
    assert batches() == [0, 64, 6]


def test_a_batch_whose_connection_broke_fails_and_the_next_opens_anew(sqlite_runner):
    """A database error that breaks the writer's connection fails the job it broke under;
    the writer closes the connection, and the writes after it work on a new one."""
    runner, _ = sqlite_runner

    def break_the_connection():
        add_user("o_lost")
        storage.db.connection().close()  # what a lost disk or a corrupt file does

    async def main():
        broken = await asyncio.gather(runner.write(break_the_connection), return_exceptions=True)
        after = await asyncio.wait_for(runner.write(add_user, "o_after"), 5)
        return broken[0], after

    broken, after = asyncio.run(main())
    assert isinstance(broken, peewee.ProgrammingError) and after == "o_after"
    assert [u.openid for u in User.select()] == ["o_after"]


@BOTH_DATABASES
def test_a_read_the_database_refused_raises_and_the_next_read_works(runner):
    async def main():
        with pytest.raises(peewee.DatabaseError):
            await runner.run(storage.db.execute_sql, "SELECT * FROM no_such_table")
        return await runner.run(lambda: User.select().count())

    assert asyncio.run(main()) == 0


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_connection_the_server_ended_is_replaced_on_the_next_read(db_url):
    """PostgreSQL restarted, or an operator ended the session: the read that meets the dead
    connection fails, the connection is closed, and the next read opens a new one."""
    storage.connect(db_url)
    storage.migrate()
    runner = Runner.for_database(threads=1)
    admin = peewee.PostgresqlDatabase(None)
    from playhouse.db_url import parse as parse_url

    admin.init(**parse_url(db_url))

    async def main():
        backend = await runner.run(
            lambda: storage.db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        )
        admin.execute_sql("SELECT pg_terminate_backend(%s)", (backend,))
        with pytest.raises((peewee.OperationalError, peewee.InterfaceError)):
            await runner.run(lambda: User.select().count())
        return await runner.run(lambda: User.select().count())

    try:
        assert asyncio.run(main()) == 0
    finally:
        admin.close()
        runner.close()
        storage.db.close()


def test_a_read_runs_beside_a_write_in_progress(sqlite_runner):
    """WAL: a reader on the loop never waits for the writer's open transaction."""
    runner, _ = sqlite_runner
    add_user("o_before")
    inside = threading.Event()

    def slow_write(release: asyncio.Event):
        add_user("o_during")
        inside.set()
        hold(release)

    async def main():
        release = asyncio.Event()
        writing = asyncio.ensure_future(runner.write(slow_write, release))
        while not inside.is_set():
            await asyncio.sleep(0.01)
        started = time.monotonic()
        users = await runner.run(lambda: [u.openid for u in User.select()])
        took = time.monotonic() - started
        release.set()
        await writing
        return users, took

    users, took = asyncio.run(main())
    assert users == ["o_before"], "the read sees what was committed, not the open write"
    assert took < 1


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_page_waiting_on_a_lock_does_not_hold_the_server(bot, db_url):
    """A share row locked by another session (an operator's long transaction, a migration):
    the claim page waits for it on a database thread, and /healthz answers meanwhile."""
    token = share_in_chat(bot)
    locker = peewee.PostgresqlDatabase(None)
    from playhouse.db_url import parse as parse_url

    locker.init(**parse_url(db_url))
    locker.connect()
    locker.execute_sql("BEGIN")
    locker.execute_sql("LOCK TABLE share IN ACCESS EXCLUSIVE MODE")
    try:
        with ThreadPoolExecutor(1) as pool:
            page = pool.submit(requests.get, f"{bot.url}/claim/{token}", timeout=30)
            time.sleep(0.5)
            assert not page.done(), "the page is waiting for the lock"
            started = time.monotonic()
            health = requests.get(f"{bot.url}/healthz", timeout=5)
            assert health.status_code == 200 and time.monotonic() - started < 0.5
            locker.execute_sql("ROLLBACK")
            assert page.result().status_code == 200
    finally:
        locker.close()


@contextlib.contextmanager
def write_lock_held_elsewhere(path):
    """Another process's write transaction (an operator's command, a second worker): SQLite's
    one write lock taken by another connection until the block ends."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.execute("COMMIT")
        other.close()


def test_a_write_waiting_for_another_process_s_lock_leaves_the_loop_free(sqlite_runner):
    """The writer's BEGIN IMMEDIATE waits for the lock in its thread: reads and the loop's
    other work go on meanwhile, and the write commits once the lock is let go."""
    runner, path = sqlite_runner
    add_user("o_before")

    async def main():
        with write_lock_held_elsewhere(path):
            writing = asyncio.ensure_future(runner.write(add_user, "o_waiting"))
            ticks = 0
            for _ in range(20):  # the loop turns while the write waits
                await asyncio.sleep(0.01)
                ticks += 1
            users = await runner.run(lambda: [u.openid for u in User.select()])
            assert not writing.done(), "the write waits for the lock"
        return ticks, users, await asyncio.wait_for(writing, 5)

    ticks, users, written = asyncio.run(main())
    assert ticks == 20 and users == ["o_before"] and written == "o_waiting"
    assert sorted(u.openid for u in User.select()) == ["o_before", "o_waiting"]


def test_a_loop_that_stops_while_its_write_waits_still_finishes_the_write(sqlite_runner):
    """asyncio.run ending (a shutdown) cancels the writer's task while its BEGIN waits in the
    thread: the wait is waited out, the batch commits, and the next loop writes as before."""
    runner, path = sqlite_runner
    holder = write_lock_held_elsewhere(path)
    holder.__enter__()
    threading.Timer(0.3, holder.__exit__, (None, None, None)).start()

    async def leave_early():
        asyncio.ensure_future(runner.write(add_user, "o_left_behind"))
        await asyncio.sleep(0.05)  # the batch is waiting for the lock; the loop ends

    asyncio.run(leave_early())
    assert [u.openid for u in User.select()] == ["o_left_behind"], "committed, not lost"
    assert asyncio.run(runner.write(add_user, "o_next")) == "o_next"


def test_writes_from_the_loops_of_two_threads_are_all_committed_each_answered_on_its_own(
    sqlite_runner,
):
    """One writer for every loop of the process (a test's server thread and its own loop):
    each job runs once and its answer reaches the loop that waits for it."""
    runner, _ = sqlite_runner

    def one_thread(name: str) -> list:
        async def main():
            loop = asyncio.get_running_loop()

            async def write(n: int):
                openid = await runner.write(add_user, f"o_{name}_{n}")
                assert asyncio.get_running_loop() is loop
                return openid

            return await asyncio.gather(*[write(n) for n in range(40)])

        return asyncio.run(main())

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(one_thread, ["a", "b"]))
    assert answers == [[f"o_{name}_{n}" for n in range(40)] for name in "ab"]
    assert User.select().count() == 80


def test_a_loop_closed_with_its_write_unfinished_leaves_the_writer_working(sqlite_runner):
    """A loop closed without running its tasks to their end (not what asyncio.run does) while a
    write waited for another process's lock: that write never finishes, and is not kept; its
    transaction is rolled back rather than left open under the next writes, which commit."""
    runner, path = sqlite_runner
    holder = write_lock_held_elsewhere(path)
    holder.__enter__()
    loop = asyncio.new_event_loop()
    loop.create_task(runner.write(add_user, "o_abandoned"))
    loop.run_until_complete(asyncio.sleep(0.1))  # the batch waits for the lock in the thread
    loop.close()
    holder.__exit__(None, None, None)  # its BEGIN now takes the lock, for a batch never resumed

    assert asyncio.run(asyncio.wait_for(runner.write(add_user, "o_next"), 5)) == "o_next"
    with sqlite3.connect(path) as other:  # what another process sees: committed, and alone
        assert other.execute('SELECT openid FROM "user"').fetchall() == [("o_next",)]
