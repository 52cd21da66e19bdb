"""The outbox's retry policy, run on SQLite and on PostgreSQL: a failed send waits the channel's
delay, doubled with each attempt, and the last attempt (or a permanent failure) ends the row
`dead` with its reason; a vendor's final word ends it `skipped`; `outbox retry` puts it back in
line; operators see rows by status and how long the oldest has waited."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from storing import migrated

from bot.outgoing import outbox_lanes, outbox_rows
from bot.outgoing.outbox import Channel, Worker, enqueue
from bot.outgoing.outbox_records import Records
from storage.models import Outbox, User, utcnow
from storage.runner import Runner

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def database(db_url):
    with migrated(db_url):
        yield


class VendorDown(Exception):
    """What an SMS or WeChat client raises for an answer worth trying again later."""


class Refused(Exception):
    retryable = False


class NotDeliverable(Exception):
    retryable = False
    skipped = True  # final, and not a fault: WeChat's 48-hour window closed


def worker_at(now: list[dt.datetime], send, retry_seconds=10, max_attempts=4) -> Worker:
    channel = Channel(send, retry_seconds=retry_seconds, max_attempts=max_attempts)
    return Worker({"sms": channel}, Runner(1), lease_seconds=60, clock=lambda: now[0])


async def vendor_down(payload, ref):
    raise VendorDown("503 from the vendor")


def test_failures_wait_twice_as_long_each_time_and_the_last_attempt_is_dead(database):
    enqueue("sms", "sms:order:G1", {"phone": "+8613800138000"})
    now = [utcnow()]
    worker = worker_at(now, vendor_down, retry_seconds=10, max_attempts=4)
    waits = []
    for attempt in range(1, 5):
        assert asyncio.run(worker.run_once()) == 1
        row = Outbox.get()
        assert row.attempts == attempt and "VendorDown: 503 from the vendor" in row.last_error
        if attempt < 4:
            assert row.status == "pending"
            waits.append((row.next_attempt_at - now[0]).total_seconds())
            now[0] = row.next_attempt_at - dt.timedelta(seconds=1)
            assert asyncio.run(worker.run_once()) == 0, "not before its time"
            now[0] += dt.timedelta(seconds=1)
    assert waits == [10, 20, 40]
    assert Outbox.get().status == "dead"
    now[0] += dt.timedelta(days=1)
    assert asyncio.run(worker.run_once()) == 0, "a dead row is never sent again"


def test_a_permanent_failure_is_dead_at_once_and_outbox_retry_puts_it_back(database):
    enqueue("sms", "sms:order:G2", {"phone": "+8613800138000"})
    now = [utcnow()]
    sent = []

    async def refused(payload, ref):
        raise Refused("isv.MOBILE_NUMBER_ILLEGAL")

    async def accepted(payload, ref):
        sent.append(ref)

    assert asyncio.run(worker_at(now, refused).run_once()) == 1
    row = Outbox.get()
    assert (row.status, row.attempts) == ("dead", 1)
    assert [r["status"] for r in outbox_rows.listing("dead")] == ["dead"]

    assert outbox_rows.retry(row.id)[0] == "dead"  # what it was
    row = Outbox.get()
    assert (row.status, row.attempts, row.lease_until) == ("pending", 0, None)
    now[0] = row.next_attempt_at
    assert asyncio.run(worker_at(now, accepted).run_once()) == 1
    assert sent == [f"outbox-{row.id}"] and Outbox.get().status == "sent"
    assert outbox_rows.retry(row.id)[0] == "sent", "a sent row stays sent"
    assert Outbox.get().status == "sent"


def test_a_final_word_from_the_vendor_ends_the_row_skipped_and_an_unknown_kind_dead(database):
    enqueue("sms", "sms:order:G3", {"phone": "+8613800138000"})
    enqueue("fax", "fax:order:G3", {"number": "010-1234"})
    now = [utcnow()]

    async def window_closed(payload, ref):
        raise NotDeliverable("45015: the user has not written for 48 hours")

    assert asyncio.run(worker_at(now, window_closed).run_once()) == 2
    sms, fax = Outbox.select().order_by(Outbox.id)
    assert (sms.status, sms.attempts) == ("skipped", 1) and "45015" in sms.last_error
    assert fax.status == "dead" and "no sender for outbox kind 'fax'" in fax.last_error


def test_operators_see_rows_by_status_and_how_long_the_oldest_waits(database, monkeypatch):
    monkeypatch.setattr(outbox_lanes, "MOST_CLAIMED", 2)  # a pass leases two rows in all
    created = utcnow()
    for n in range(3):
        enqueue("sms", f"sms:order:W{n}", {"n": n})
    now = [created + dt.timedelta(minutes=5)]
    counts, oldest = outbox_rows.state(now[0])
    assert counts == {"pending": 3} and 299 <= oldest <= 301
    sent = []

    async def accepted(payload, ref):
        sent.append(payload["n"])

    worker = worker_at(now, accepted)
    worker.batch = 2
    assert asyncio.run(worker.run_once()) == 2
    counts, oldest = outbox_rows.state(now[0])
    assert counts == {"pending": 1, "sent": 2} and 299 <= oldest <= 301
    assert asyncio.run(worker.run_once()) == 1
    assert outbox_rows.state(now[0]) == ({"sent": 3}, 0.0)
    assert sent == [0, 1, 2], "oldest first"


def test_the_worker_sends_as_rows_come_wakes_when_told_and_stops_when_asked(database):
    sent = []

    async def accepted(payload, ref):
        sent.append(payload["n"])

    worker = Worker({"sms": Channel(accepted, 10, 4)}, Runner(1))

    async def main():
        for n in range(1, 26):  # more than a batch: the next batch goes without waiting
            enqueue("sms", f"sms:order:R{n}", {"n": n})
        stop = asyncio.Event()
        running = asyncio.ensure_future(worker.run(stop, idle_seconds=30))
        for _ in range(100):
            if len(sent) == 25:
                break
            await asyncio.sleep(0.05)
        assert len(sent) == 25, "the second batch did not wait out the idle time"
        await asyncio.sleep(0.2)  # idle now, for up to 30 s
        enqueue("sms", "sms:order:R26", {"n": 26})
        worker.wake.set()  # a new row: no waiting out the idle time
        for _ in range(100):
            if len(sent) == 26:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(running, 5)

    asyncio.run(main())
    assert sent == list(range(1, 27))


def test_a_lease_holds_to_its_end_and_is_free_the_moment_after(database):
    enqueue("sms", "sms:order:L1", {"n": 1})
    now = [utcnow()]
    first = worker_at(now, vendor_down)
    (row,) = first.claim()  # taken, then the worker dies
    now[0] = row.lease_until
    assert worker_at(now, vendor_down).claim() == []
    now[0] = row.lease_until + dt.timedelta(microseconds=1)
    assert [r.id for r in worker_at(now, vendor_down).claim()] == [row.id]


class Refusing(Exception):
    """The vendor refused the connection: the SMS never left."""

    in_doubt = False


def test_a_send_in_doubt_asks_the_records_on_the_retry_schedule_until_they_must_show_it(
    database,
):
    enqueue("sms", "sms:order:D1", {"phone": "+8613800138000"})
    start = utcnow()
    now = [start]
    answers = iter([Refusing("refused"), Refusing("refused"), TimeoutError("no answer")])
    sends, asked = [], []

    async def send(payload, ref):
        sends.append(now[0])
        if error := next(answers, None):
            raise error

    async def check(payload, ref, since, at):
        asked.append(at)
        return False  # the records do not show it

    channel = Channel(send, retry_seconds=10, max_attempts=8, check=check,
                      records_lag_seconds=600)  # fmt: skip
    worker = Worker({"sms": channel}, Runner(1), clock=lambda: now[0])

    def step(seconds: float) -> Outbox:
        now[0] = start + dt.timedelta(seconds=seconds)
        assert asyncio.run(worker.run_once()) == 1
        return Outbox.get()

    def due(row: Outbox) -> float:
        return (row.next_attempt_at - start).total_seconds()

    assert due(step(0)) == 10 and due(step(10)) == 30  # refused twice: 10 s, then 20 s
    row = step(30)  # sent, no answer: in doubt from now
    assert (due(row), row.in_doubt_since) == (70, now[0])
    row = step(70)  # the records asked, not there yet: asked again after 40 s
    assert (due(row), row.attempts, len(sends)) == (110, 3, 3)
    assert "not in the records yet" in row.last_error
    assert due(step(625)) == 630, "no later than when the records must show it"
    row = step(630)  # they still do not: sent again
    assert row.status == "sent" and len(sends) == 4 and len(asked) == 3


def test_a_first_send_in_doubt_is_asked_about_again_after_the_first_delay(database):
    enqueue("sms", "sms:order:D2", {"phone": "+8613800138000"})
    start = utcnow()
    now = [start]

    async def send(payload, ref):
        raise TimeoutError("no answer")

    async def check(payload, ref, since, at):
        return False

    channel = Channel(send, retry_seconds=10, max_attempts=8, check=check,
                      records_lag_seconds=600)  # fmt: skip
    worker = Worker({"sms": channel}, Runner(1), clock=lambda: now[0])
    for at, due in ((0, 10), (10, 20), (20, 30)):  # sent in doubt, then asked every 10 s
        now[0] = start + dt.timedelta(seconds=at)
        assert asyncio.run(worker.run_once()) == 1
        row = Outbox.get()
        assert ((row.next_attempt_at - start).total_seconds(), row.attempts) == (due, 1)


def test_a_lease_is_renewed_for_its_full_length_right_before_the_send(database):
    enqueue("sms", "sms:order:L2", {"n": 2})
    now = [utcnow()]
    worker = worker_at(now, vendor_down)
    (row,) = worker.claim()
    now[0] += dt.timedelta(seconds=50)  # a slow batch: ten seconds of the lease left
    assert worker.renew(row)
    assert Outbox.get().lease_until == now[0] + dt.timedelta(seconds=60)
    now[0] += dt.timedelta(seconds=30)
    assert worker_at(now, vendor_down).claim() == [], "still this worker's"


@pytest.mark.parametrize("later", [0, 1, 2, 50], ids=["at-once", "1s", "2s", "50s"])
def test_a_send_goes_under_the_claims_lease_only_a_second_after_it(database, later):
    """A row claimed a moment ago is sent under the lease the claim gave it (no write to renew
    it: it is as long as a renewal would make it); later in a slow batch it is renewed for
    its full length first."""
    enqueue("sms", "sms:order:L3", {"n": 3})
    start = utcnow()
    times = iter([start])  # the claim reads the clock once; everything after it, `later` on

    def clock() -> dt.datetime:
        return next(times, start + dt.timedelta(seconds=later))

    leases = []

    async def send(payload, ref):
        leases.append(Outbox.get().lease_until)

    worker = Worker({"sms": Channel(send, 10, 4)}, Runner(1), lease_seconds=60, clock=clock)
    assert asyncio.run(worker.run_once()) == 1
    renewed = later > 1
    assert leases == [start + dt.timedelta(seconds=(later if renewed else 0) + 60)]
    assert Outbox.get().status == "sent", "the fence held: the lease it sent under is its own"


def idle_for(worker: Worker, seconds: float, idle: float) -> int:
    """Let the worker run with nothing to send; how many tasks are left on the loop."""

    async def main() -> int:
        stop = asyncio.Event()
        running = asyncio.ensure_future(worker.run(stop, idle_seconds=idle))
        await asyncio.sleep(seconds)
        left = len(asyncio.all_tasks())
        stop.set()
        await asyncio.wait_for(running, 5)
        return left

    return asyncio.run(main())


def test_an_idle_worker_waits_between_passes_and_leaves_no_tasks_behind(database):
    passes = []

    def clock():
        passes.append(1)  # read once a pass, when it claims
        return utcnow()

    worker = Worker({"sms": Channel(vendor_down, 10, 4)}, Runner(1), clock=clock)
    worker.wake.set()  # one wake-up, then idle again
    left = idle_for(worker, 0.5, idle=0.1)
    assert len(passes) <= 10, f"{len(passes)} passes in half a second: it never idled"
    assert left <= 4, (
        f"{left} tasks on the loop: the idle waits are not cancelled"
    )  # main, run, 2 waits


def test_a_failing_pass_is_logged_and_waits_before_the_next(database, caplog):
    caplog.set_level("ERROR", logger="gift_bot.outbox")
    runner = Runner(1)
    runner.close()  # its threads are gone: every pass fails
    worker = Worker({"sms": Channel(vendor_down, 10, 4)}, runner)
    idle_for(worker, 0.5, idle=0.1)
    failed = [r for r in caplog.records if r.getMessage() == "outbox pass failed"]
    assert 1 <= len(failed) <= 10


class CountedRunner(Runner):
    """A runner that counts its write transactions and can be told to fail the next one."""

    def __init__(self):
        super().__init__(1)
        self.writes = 0
        self.fail_next = False

    async def write(self, fn, *args):
        self._count()
        return await super().write(fn, *args)

    async def write_alone(self, fn, *args):
        self._count()
        return await super().write_alone(fn, *args)

    def _count(self) -> None:
        if self.fail_next:
            self.fail_next = False
            raise OSError("the database went away for a moment")
        self.writes += 1


def run_until(worker: Worker, done, idle: float = 30) -> None:
    async def main():
        stop = asyncio.Event()
        running = asyncio.ensure_future(worker.run(stop, idle_seconds=idle))
        for _ in range(200):
            if done():
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(running, 5)

    asyncio.run(main())


def test_each_sends_record_goes_with_the_next_write_and_never_waits_behind_a_send(database):
    """Two SMS (asked about before a second try) and two WeChat texts (not), all four to one
    person, so in one lane: the worker writes a lease for the pass, an in-doubt mark before
    each SMS, and a record before each text — each send's record with the next of these — and
    the last before it waits. Six writes where each record had its own: eight."""
    events = []

    async def send(payload, ref):
        events.append(("send", payload["n"]))

    async def check(payload, ref, since, at):
        return False

    runner = CountedRunner()
    worker = Worker(
        {"sms": Channel(send, 10, 4, check=check), "wechat_text": Channel(send, 10, 4)}, runner
    )
    recorded = worker.sent

    def sent(row, by=""):
        events.append(("record", row.payload["n"]))
        recorded(row, by)

    worker.sent = sent
    for n, kind in enumerate(("sms", "sms", "wechat_text", "wechat_text"), 1):
        enqueue(kind, f"{kind}:order:W{n}", {"n": n, "openid": "o_one"})
    run_until(worker, lambda: len(events) == 8)
    assert events == [
        ("send", 1), ("record", 1), ("send", 2), ("record", 2),
        ("send", 3), ("record", 3), ("send", 4), ("record", 4),
    ]  # fmt: skip
    assert runner.writes == 6  # claim, mark 1, mark 2 (+1), write (+2), write (+3), write (+4)
    assert [r.status for r in Outbox.select().order_by(Outbox.id)] == ["sent"] * 4
    assert all(r.lease_until is None and r.in_doubt_since is None for r in Outbox.select())


def test_on_postgresql_each_of_the_workers_statements_is_a_round_trip_of_its_own(
    database, db_url, round_trips
):
    """The round trips of a pass sending three WeChat texts: one statement leases all three,
    then before each later send the record of the one before; the last record is written
    before the worker waits (the lease found fewer rows than it asked: none left due). Each
    commits as it runs: no BEGIN, no COMMIT."""
    if not db_url.startswith("postgres"):
        pytest.skip("PostgreSQL's round trips (SQLite's writer commits them in one transaction)")
    texts = round_trips

    async def send(payload, ref):
        texts.append(f"send {payload['n']}")

    worker = Worker({"wechat_text": Channel(send, 10, 4)}, Runner(1))
    for n in (1, 2, 3):
        enqueue("wechat_text", f"wechat_text:order:R{n}", {"n": n})
    run_until(worker, lambda: Outbox.select().where(Outbox.status == "sent").count() == 3)
    kinds = [
        "claim" if "EXECUTE outbox_claim" in t else "record" if "EXECUTE outbox_sent" in t else t
        for t in texts
    ]
    first = kinds.index("claim")
    assert kinds[first : first + 7] == [
        "claim", "send 1", "record", "send 2", "record", "send 3", "record",
    ], texts  # fmt: skip
    assert not [t for t in texts if "BEGIN" in t or "COMMIT" in t], texts
    assert [r.attempts for r in Outbox.select()] == [1, 1, 1]


def test_a_record_is_kept_until_it_has_committed_and_never_written_twice(database, db_url):
    """Two records wait; the second fails. On PostgreSQL the first committed as it ran and is
    gone from the waiting; on SQLite the transaction undid it and both wait. Either way the
    next write writes each once."""
    failures = [RuntimeError("the second record failed")]

    def first():
        User.insert(openid="o_first").execute()

    def second():
        if failures:
            raise failures.pop()
        User.insert(openid="o_second").execute()

    records = Records(Runner.for_database(1))  # SQLite: its group-committing writer
    records.later(first)
    records.later(second)

    async def main():
        with pytest.raises(RuntimeError, match="second record"):
            await records.flush()
        kept = [fn.__name__ for fn, _ in records._waiting]
        written = sorted(u.openid for u in User.select())
        await records.flush()
        return kept, written

    kept, written = asyncio.run(main())
    if db_url.startswith("postgres"):
        assert (kept, written) == (["second"], ["o_first"])
    else:
        assert (kept, written) == (["first", "second"], [])
    assert sorted(u.openid for u in User.select()) == ["o_first", "o_second"]
    assert records._waiting == []


def test_a_record_still_waiting_at_the_stop_is_written_before_the_worker_returns(database):
    stop = asyncio.Event()

    async def send(payload, ref):
        stop.set()  # asked to stop while the send is out

    worker = Worker({"sms": Channel(send, 10, 4)}, Runner(1))
    enqueue("sms", "sms:order:S1", {"n": 1})

    async def main():
        await asyncio.wait_for(worker.run(stop, idle_seconds=30), 5)

    asyncio.run(main())
    row = Outbox.get()
    assert (row.status, row.lease_until) == ("sent", None)


def test_a_write_that_fails_keeps_the_records_for_the_next_and_sends_nothing_twice(
    database, caplog
):
    caplog.set_level("ERROR", logger="gift_bot.outbox")
    sends = []
    runner = CountedRunner()

    async def send(payload, ref):
        sends.append(payload["n"])
        runner.fail_next = True  # the write that would carry this send's record fails

    worker = Worker({"sms": Channel(send, 10, 4)}, runner)
    enqueue("sms", "sms:order:F1", {"n": 1})
    run_until(worker, lambda: Outbox.get().status == "sent", idle=0.05)
    assert sends == [1], "sent once: its record waited for a write that went through"
    assert [r.getMessage() for r in caplog.records] == ["outbox pass failed"]
    assert Outbox.get().lease_until is None
