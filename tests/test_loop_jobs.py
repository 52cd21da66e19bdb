"""PostgreSQL jobs on the event loop (storage/loop.py): each job a greenlet with a connection of
its own. They interleave without sharing a transaction, a job waiting on the server (a row
lock, a slow statement) leaves the loop free, a broken connection is dropped, at most the
pool's size run at once; prebuilt statements are prepared once per connection, and a text
that failed with a PREPARE in it is never trusted (DEALLOCATE ALL before the next)."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import threading

import peewee
import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storing import migrated

from storage import db as storage
from storage import hot, loop_connection, loop_pool, prebuilt, share_reads
from storage.loop import Local, await_
from storage.models import User, utcnow
from storage.models.base import Encoded
from storage.runner import Runner

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


@pytest.fixture
def config(db_url):
    with migrated(db_url) as config:
        yield config


@pytest.fixture
def runner(config):
    runner = Runner.for_database(4)
    yield runner
    runner.close()


def add_user(openid: str) -> str:
    User.create(openid=openid, first_seen=utcnow(), last_seen=utcnow())
    return openid


def sleep_in_database(seconds: float) -> None:
    storage.db.execute_sql("SELECT pg_sleep(%s)", (seconds,))


@pytest.fixture
def sent(config, round_trips):
    """From now on, the text of each round trip of the jobs on the loop."""
    return round_trips


def test_jobs_interleave_each_in_its_own_transaction(runner):
    """A job held up in the database does not hold up another; neither sees the other's
    transaction, and both commit."""

    def slow():
        add_user("o_slow")
        sleep_in_database(0.5)
        return storage.db.in_transaction(), User.select().where(User.openid == "o_fast").count()

    def fast():
        add_user("o_fast")
        return storage.db.in_transaction()

    async def main():
        slow_job = asyncio.ensure_future(runner.write(slow))
        await asyncio.sleep(0.1)
        fast_result = await asyncio.wait_for(runner.write(fast), 0.3)  # while slow() sleeps
        return fast_result, slow_job.done(), await slow_job

    fast_in_txn, slow_was_done, (slow_in_txn, seen) = asyncio.run(main())
    assert fast_in_txn and slow_in_txn and not slow_was_done
    assert seen == 1, "the fast job committed while the slow one ran (READ COMMITTED sees it)"
    assert sorted(u.openid for u in User.select()) == ["o_fast", "o_slow"]


def test_a_job_waiting_on_a_row_lock_leaves_the_loop_free(runner, db_url):
    """Another session holds the row; the job waits on the server, the loop keeps serving."""
    add_user("o_locked")
    holder = psycopg2.connect(**storage.db.obj.connect_params, dbname=storage.db.obj.database)
    cur = holder.cursor()
    cur.execute("SELECT 1 FROM \"user\" WHERE openid = 'o_locked' FOR UPDATE")

    def touch():
        User.update(last_seen=utcnow()).where(User.openid == "o_locked").execute()
        return "done"

    async def main():
        job = asyncio.ensure_future(runner.write(touch))
        ticks = 0
        for _ in range(20):  # 0.2 s of the loop's own work while the job waits
            await asyncio.sleep(0.01)
            ticks += 1
        waiting = not job.done()
        await asyncio.get_running_loop().run_in_executor(None, holder.commit)
        return ticks, waiting, await asyncio.wait_for(job, 5)

    try:
        ticks, waiting, result = asyncio.run(main())
    finally:
        holder.close()
    assert ticks == 20 and waiting and result == "done"


def test_a_job_cancelled_while_it_waits_for_its_answer_changes_nothing(runner):
    """A job waiting on the server parks, and the loop's socket callback runs it on: a
    request cancelled meanwhile (its client gone, a shutdown) reaches the job where it waits,
    its transaction is undone, and the next jobs have working connections."""
    add_user("o_locked")
    holder = psycopg2.connect(**storage.db.obj.connect_params, dbname=storage.db.obj.database)
    holder.cursor().execute("SELECT 1 FROM \"user\" WHERE openid = 'o_locked' FOR UPDATE")

    def touch(seen):
        User.update(last_seen=seen).where(User.openid == "o_locked").execute()
        return "done"

    later = utcnow() + dt.timedelta(days=1)

    async def main():
        waiting = asyncio.ensure_future(runner.write(touch, later))
        await asyncio.sleep(0.1)  # the job parked, its UPDATE waiting for the row
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.get_running_loop().run_in_executor(None, holder.commit)
        others = [runner.write(add_user, f"o_after_{i}") for i in range(6)]
        return await asyncio.wait_for(asyncio.gather(*others), 5)

    try:
        assert asyncio.run(main()) == [f"o_after_{i}" for i in range(6)]
    finally:
        holder.close()
    assert User.get(User.openid == "o_locked").last_seen < later


def test_a_job_cancelled_as_its_answer_comes_is_cancelled_where_it_awaits_next(runner, monkeypatch):
    """The cancellation lands between the socket callback running the job on and `drive`
    hearing of it: the job is cancelled at what it awaits next, as if the answer came first."""
    reached: list[str] = []
    tasks: list[asyncio.Task] = []
    original = loop_connection.resume

    def resume_then_cancel(job):
        original(job)
        if tasks and not tasks[0].done():
            tasks[0].cancel()

    monkeypatch.setattr(loop_connection, "resume", resume_then_cancel)

    def job():
        storage.db.execute_sql("SELECT pg_sleep(0.05)")
        reached.append("answered")
        try:
            await_(asyncio.sleep(5))
        except asyncio.CancelledError:
            reached.append("cancelled awaiting")
            raise
        reached.append("slept")

    async def main():
        tasks.append(asyncio.ensure_future(runner.run(job)))
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(tasks[0], 5)
        monkeypatch.setattr(loop_connection, "resume", original)
        return await runner.run(add_user, "o_next")

    assert asyncio.run(main()) == "o_next"
    assert reached == ["answered", "cancelled awaiting"]


def test_an_error_raised_after_a_park_is_the_job_s_own(runner):
    """A job that parked and then failed raises its own error from `runner.run`, not one
    about parking; the loop goes on."""

    def fails():
        sleep_in_database(0.01)
        storage.db.execute_sql("SELECT 1 / 0")

    async def main():
        with pytest.raises(peewee.DataError):
            await runner.run(fails)
        return await runner.run(add_user, "o_after_error")

    assert asyncio.run(main()) == "o_after_error"


def test_no_more_jobs_run_at_once_than_the_pool_has_connections(runner):
    database = storage.db.obj
    database._jobs_pool, database._max_connections = None, 2
    running = [0, 0]  # now, most

    def job(n):
        running[0] += 1
        running[1] = max(running)
        sleep_in_database(0.05)
        running[0] -= 1
        return n

    async def main():
        return await asyncio.gather(*(runner.run(job, n) for n in range(7)))

    assert asyncio.run(main()) == list(range(7))
    assert running[1] == 2
    assert database._jobs_pool._open <= 2


def test_a_broken_connection_is_dropped_and_the_next_job_has_a_new_one(runner):
    def backend():
        return storage.db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]

    async def main():
        first = await runner.run(backend)
        killer = psycopg2.connect(**storage.db.obj.connect_params, dbname=storage.db.obj.database)
        killer.autocommit = True
        killer.cursor().execute("SELECT pg_terminate_backend(%s)", (first,))
        killer.close()
        with pytest.raises((peewee.OperationalError, peewee.InterfaceError)):
            await runner.run(backend)
        return first, await runner.run(backend)

    first, second = asyncio.run(main())
    assert second != first


def test_task_locals_and_after_commit_work_belong_to_their_own_job(runner):
    local = Local()
    done: list[str] = []

    def job(name, fail):
        local.name = name
        storage.after_commit(lambda: done.append(name))
        sleep_in_database(0.05)  # the other job runs meanwhile
        assert local.name == name
        if fail:
            raise RuntimeError("undone")
        return name

    async def main():
        return await asyncio.gather(
            runner.write(job, "kept", False), runner.write(job, "failed", True),
            return_exceptions=True,
        )  # fmt: skip

    kept, failed = asyncio.run(main())
    assert kept == "kept" and isinstance(failed, RuntimeError)
    assert done == ["kept"]


def test_await_outside_a_job_is_refused(config):
    with pytest.raises(RuntimeError, match="outside a database job"):
        await_(object())


def test_a_prebuilt_statement_is_prepared_once_per_connection(runner, sent):
    database = storage.db.obj
    database._jobs_pool, database._max_connections = None, 1  # one connection: one PREPARE

    async def main():
        for _ in range(3):
            await runner.run(hot.catalogue_version)

    asyncio.run(main())
    texts = sent
    assert texts[0].startswith("PREPARE catalogue_version AS SELECT version")
    assert texts[0].endswith("EXECUTE catalogue_version")
    assert texts[1:] == ["EXECUTE catalogue_version"] * 2


def test_a_jobs_connection_writes_any_text_as_quoted_utf8(runner, sent):
    """The pool's connections are UTF-8 with standard strings (PostgreSQL's defaults), so text
    beyond ASCII, quotes and backslashes among it, is written directly, and read back whole."""
    text = "送你'一份'\\礼物 🎁"

    def job():
        conn = storage.db.obj._state.conn
        assert conn.plain
        prebuilt.defer("keep_reply", (text, "msg:plain"))  # no such row: nothing is written
        share = share_reads.share_by_token(text)
        kept = conn.named_cursor  # the prebuilt statements' cursor, kept for the connection
        assert hot.catalogue_version() >= 0 and conn.named_cursor is kept is not None
        return share

    assert asyncio.run(runner.write(job)) is None
    assert "EXECUTE keep_reply('送你''一份''\\礼物 🎁', 'msg:plain')" in sent[0]
    assert "EXECUTE share_by_token('送你''一份''\\礼物 🎁')" in sent[0]


def test_the_names_an_answer_carries_are_decoded_in_c(runner):
    """psycopg2 decodes each column's name (and the status, errors and notices) with the
    connection's codec: C's UTF-8 decoder itself (loop_connection.C_UTF8), not a Python function
    around it; names beyond ASCII come out whole."""
    python_decodes = []

    def watch(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "decode":
            python_decodes.append(frame.f_code.co_filename)

    def job():
        cursor = storage.db.obj._state.conn.cursor()  # the job's connection, waiting on the loop
        sys.setprofile(watch)
        try:
            cursor.execute('SELECT 1 AS "收货人", 2 AS plain, \'礼物\' AS "🎁"')
            row = cursor.fetchone()
        finally:
            sys.setprofile(None)
        return [c.name for c in cursor.description], row, cursor.statusmessage

    names, row, status = asyncio.run(runner.write(job))
    assert names == ["收货人", "plain", "🎁"] and row == (1, 2, "礼物")
    assert status == "SELECT 1" and python_decodes == []


def test_after_a_failed_text_with_a_prepare_the_next_starts_afresh(runner, sent):
    """The PREPARE may or may not have run before the failure (and outlives the rollback):
    the connection's prepared statements are dropped and prepared again."""
    database = storage.db.obj
    database._jobs_pool, database._max_connections = None, 1
    texts = sent

    def failing():
        prebuilt.defer("keep_reply", ("not json at all", "msg:none"))  # fine: no such row
        storage.db.obj.defer("SELECT 1 / 0")  # fails when it goes
        return share_reads.share_by_token("no-such-token")

    def reading():
        return share_reads.share_by_token("no-such-token"), hot.catalogue_version()

    async def main():
        with pytest.raises(peewee.DataError):
            await runner.write(failing)
        return await runner.run(reading)

    share, version = asyncio.run(main())
    assert share is None and version >= 0
    failed = next(t for t in texts if "1 / 0" in t)
    assert "PREPARE keep_reply" in failed and "PREPARE share_by_token" in failed
    after = [t for t in texts[texts.index(failed) + 1 :] if t != "ROLLBACK"]
    assert after[0].startswith("DEALLOCATE ALL; PREPARE share_by_token")
    assert after[1].startswith("PREPARE catalogue_version")


# What prebuilt statements are given: text (any, quotes, backslashes and CJK among it), whole
# numbers of any size, booleans, NULL, naive and aware timestamps, dates, and what falls through
# to psycopg2's adapters (numbers with a point, lists).
VALUES = st.one_of(
    # NUL and lone surrogates (no UTF-8 has them): refused, the tests below
    st.text(st.characters(codec="utf-8", exclude_characters="\x00")),
    st.text(alphabet=st.sampled_from("ab'\\\n%s;-中")),
    st.text(alphabet=st.sampled_from("{}\":'\\a中")).map(Encoded),  # a JSON column's text
    st.integers(),
    st.booleans(),
    st.none(),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.dates(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=3),
)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(VALUES, max_size=6))
def test_parameters_are_written_as_psycopg2_writes_them_and_read_back_as_given(config, values):
    """storage/loop_connection.py writes an EXECUTE's parameters itself (the plain cases) or
    through psycopg2's adapters: byte for byte what `mogrify` writes, and PostgreSQL reads
    each back as it was given. (`config` only binds the database: nothing here writes.)"""
    connection = storage.db.connection()
    cursor = connection.cursor()
    assert loop_connection.plain_text(connection)  # PostgreSQL's defaults, this suite's server
    mogrified = [cursor.mogrify("%s", (value,)) for value in values]
    for plain in (True, False):  # any text as UTF-8, or psycopg2's adapters for all but ASCII
        written = [loop_connection._literal(value, connection, plain) for value in values]
        assert written == mogrified
    for value, literal in zip(values, written, strict=True):
        if isinstance(value, str | int | dt.date) or value is None:
            cursor.execute(b"SELECT " + literal)
            assert cursor.fetchone()[0] == value


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=st.text(), after=st.text())
def test_text_with_a_nul_is_refused_as_psycopg2_refuses_it(config, before, after):
    connection = storage.db.connection()
    for text in (f"{before}\x00{after}", f"{before.encode('ascii', 'ignore').decode()}\x00"):
        with pytest.raises(ValueError, match="NUL"):
            connection.cursor().mogrify("%s", (text,))
        for plain in (True, False):
            with pytest.raises(ValueError, match="NUL"):
                loop_connection._literal(text, connection, plain)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(st.characters(categories=["Cs"]), min_size=1).map(lambda t: f"a{t}b"))
def test_text_with_a_lone_surrogate_is_refused_as_psycopg2_refuses_it(config, text):
    """A lone surrogate (what `json.loads('"\\ud800"')` makes) is no text UTF-8 can carry."""
    connection = storage.db.connection()
    with pytest.raises(UnicodeEncodeError):
        connection.cursor().mogrify("%s", (text,))
    for plain in (True, False):
        with pytest.raises(UnicodeEncodeError):
            loop_connection._literal(text, connection, plain)


def test_close_from_another_thread_waits_for_the_jobs_on_the_loop(config):
    runner = Runner.for_database(2)

    async def main():
        job = asyncio.ensure_future(
            runner.write(lambda: (add_user("o_last"), sleep_in_database(0.4)))
        )
        await asyncio.sleep(0.1)
        closing = threading.Thread(target=runner.close)
        closing.start()
        await asyncio.sleep(0.15)
        still = closing.is_alive()
        await job
        await asyncio.get_running_loop().run_in_executor(None, closing.join, 5)
        with pytest.raises(RuntimeError, match="closed"):
            await runner.run(hot.catalogue_version)
        return still

    assert asyncio.run(main()), "close() waited for the job"
    assert [u.openid for u in User.select()] == ["o_last"]


def test_a_connection_given_back_goes_to_the_longest_waiting_job(config):
    """A job that came later never takes the connection a waiting one was promised (it waits
    behind it): otherwise, at full load, one unlucky job waits again and again."""
    pool = loop_pool.LoopPool(storage.db.obj._loop_params(), 1, lambda raw: None)

    async def main():
        held = await pool.acquire()
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)  # it waits for the only connection
        newcomer = asyncio.ensure_future(pool.acquire())  # runs before the waiter wakes
        pool.release(held)
        await asyncio.sleep(0.05)
        first = waiting.done() and waiting.result() is held and not newcomer.done()
        pool.release(await waiting)
        second = await asyncio.wait_for(newcomer, 1) is held
        pool.release(held)
        pool.close_idle()
        return first, second

    assert asyncio.run(main()) == (True, True)
