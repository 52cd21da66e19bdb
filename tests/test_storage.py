"""Storage contract, run on SQLite and on PostgreSQL: migrations match the models, stock is
reserved atomically and never goes negative, the outbox hands each row to one worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from dataclasses import replace

import pytest
from playhouse.schema_diff import diff_models
from shop import XIAOHONG
from storing import migrated

from bot.forms.base import Invalid
from bot.forms.delivery import delivery_slots
from bot.forms.order import OrderAnswers
from bot.gifting import catalogue, orders, shares
from bot.outgoing.notices import Notices
from bot.outgoing.outbox import Channel, Worker, enqueue
from bot.render import Renderer
from storage import db as storage
from storage import orders_sql, prebuilt
from storage.models import ALL_MODELS, Gift, Order, Outbox, Share, User, utcnow
from storage.runner import Runner

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def config(db_url):
    with migrated(db_url) as config:
        yield config


def test_migrating_an_empty_database_gives_exactly_the_models(config):
    assert not diff_models(storage.db.obj, ALL_MODELS), "migrations and models differ"
    assert storage.migrate() == [], "a second start applies nothing"


def test_two_workers_starting_at_once_migrate_once(db_url):
    storage.connect(db_url)
    errors = []

    def start():
        try:
            storage.migrate()
        except Exception as exc:  # pragma: no cover - the failure is the assertion
            errors.append(exc)
        finally:
            storage.db.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert not diff_models(storage.db.obj, ALL_MODELS)


def share_at_once(config, giver: str, gift: str, quantity: int, times: int = 8):
    """`times` shares of `quantity` by `giver`, each in its own thread at once: the shares made
    and the codes of those refused."""
    made, refused = [], []

    def share():
        try:
            made.append(shares.create(config, giver, gift, quantity, "", utcnow()))
        except Invalid as exc:
            refused.append(exc.code)
        finally:
            storage.db.close()

    threads = [threading.Thread(target=share) for _ in range(times)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return made, refused


def test_concurrent_shares_never_take_stock_below_zero(config):
    Gift.update(stock=5, committed=0).where(Gift.id == "scarf").execute()
    User.create(openid="o_giver")
    made, refused = share_at_once(config, "o_giver", "scarf", 2)
    gift = Gift.get_by_id("scarf")
    assert len(made) == 2 and set(refused) == {"out_of_stock"}
    assert gift.committed == 4 and gift.available == 1


def test_a_share_past_the_stock_names_the_gift_and_what_is_left_and_a_retired_one_says_so(
    config,
):
    User.create(openid="o_giver")
    Gift.update(stock=Gift.committed + 3).where(Gift.id == "scarf").execute()
    with pytest.raises(Invalid) as refused:
        shares.create(config, "o_giver", "scarf", 4, "", utcnow())
    assert refused.value.code == "out_of_stock"
    assert refused.value.params == {"gift": "羊绒围巾", "left": 3}
    assert shares.create(config, "o_giver", "scarf", 3, "", utcnow()).quantity == 3, "exactly all"
    Gift.update(active=False).where(Gift.id == "coffee").execute()
    with pytest.raises(Invalid) as refused:
        shares.create(config, "o_giver", "coffee", 1, "", utcnow())
    assert refused.value.code == "gift_retired"
    with pytest.raises(Invalid) as refused:
        shares.create(config, "o_giver", "no-such-gift", 1, "", utcnow())
    assert refused.value.code == "gift_retired"
    assert Share.select().count() == 1


def test_expired_shares_give_their_unclaimed_units_back_once(config):
    User.create(openid="o_giver")
    now = utcnow()
    share = shares.create(config, "o_giver", "coffee", 3, "", now)
    Share.update(claimed=1).where(Share.id == share.id).execute()
    later = now + dt.timedelta(hours=config.shares.expire_hours, minutes=1)
    before = Gift.get_by_id("coffee").committed
    assert shares.release_expired(later) == 1
    assert shares.release_expired(later) == 0
    assert Gift.get_by_id("coffee").committed == before - 2


def test_sync_never_loses_reserved_stock(config):
    User.create(openid="o_giver")
    shares.create(config, "o_giver", "fruit", 4, "", utcnow())
    lowered = [replace(g, stock=1) if g.id == "fruit" else g for g in config.gifts]
    report = catalogue.sync(lowered)
    fruit = Gift.get_by_id("fruit")
    assert fruit.stock == 4 and fruit.committed == 4 and fruit.available == 0
    assert any("fruit" in line for line in report.kept)


def test_each_outbox_row_goes_to_exactly_one_worker(config):
    for i in range(30):
        enqueue("sms", f"sms:test:{i}", {"n": i})
    sent: list[int] = []

    async def record(payload, key):
        sent.append(payload["n"])

    def work():
        worker = Worker({"sms": Channel(record, 1, 3)}, Runner(1), batch=5)
        while asyncio.run(worker.run_once()):
            pass
        storage.db.close()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(sent) == list(range(30))
    assert Outbox.select().where(Outbox.status == "sent").count() == 30


def test_a_crashed_send_is_retried_after_its_lease(config):
    enqueue("sms", "sms:test:lease", {"n": 1})
    clock = utcnow
    first = Worker({}, Runner(1), lease_seconds=60, clock=clock)
    assert len(first.claim()) == 1  # taken, then the process dies before sending
    sent = []

    async def record(payload, key):
        sent.append(key)

    second = Worker({"sms": Channel(record, 1, 3)}, Runner(1))
    assert asyncio.run(second.run_once()) == 0, "leased: not handed out twice"
    second.clock = lambda: utcnow() + dt.timedelta(seconds=61)
    assert asyncio.run(second.run_once()) == 1
    assert sent == [f"outbox-{Outbox.get().id}"]


def test_a_slow_batch_never_sends_a_row_whose_lease_another_worker_took(config):
    """The audit's double SMS: a batch outlives its lease; the second worker sends the rows;
    the first must neither send them again nor put a sent row back to pending."""
    for i in range(3):
        enqueue("sms", f"sms:test:slow{i}", {"n": i})
    now = [utcnow()]
    sent: list[tuple[str, int]] = []

    def worker(name: str, fail: bool = False) -> Worker:
        async def send(payload, ref):
            sent.append((name, payload["n"]))
            now[0] += dt.timedelta(seconds=40)  # each send is slow
            if fail:
                raise TimeoutError("the vendor took it, but answered too late")

        return Worker({"sms": Channel(send, 600, 3)}, Runner(1), lease_seconds=60,
                      clock=lambda: now[0])  # fmt: skip

    slow = worker("slow", fail=True)
    batch = slow.claim()
    assert len(batch) == 3
    assert slow.renew(batch[0])

    async def deliver_first():
        await slow.deliver(batch[0])
        await slow.records.flush()  # its failure, written with the worker's next write

    asyncio.run(deliver_first())
    # 40 s later its lease on the two rows it has not sent yet runs out: another worker takes them.
    now[0] += dt.timedelta(seconds=30)
    fast = worker("fast")
    assert asyncio.run(fast.run_once()) == 2
    for row in batch[1:]:  # the slow worker goes on with its stale batch
        assert not slow.renew(row)
    assert sent == [("slow", 0), ("fast", 1), ("fast", 2)]
    assert [r.status for r in Outbox.select().order_by(Outbox.id)] == ["pending", "sent", "sent"]


def test_a_late_failure_never_puts_a_sent_row_back_to_pending(config):
    enqueue("sms", "sms:test:late", {"n": 1})
    now = [utcnow()]
    first = Worker({"sms": Channel(_ok, 1, 3)}, Runner(1), lease_seconds=60, clock=lambda: now[0])
    (row,) = first.claim()
    now[0] += dt.timedelta(seconds=61)
    second = Worker({"sms": Channel(_ok, 1, 3)}, Runner(1), clock=lambda: now[0])
    assert asyncio.run(second.run_once()) == 1
    first.failed(row, TimeoutError("late"))  # the first worker's send finally times out
    assert Outbox.get().status == "sent"


async def _ok(payload, ref):
    return None


def test_enqueue_with_the_same_key_adds_one_row(config):
    assert enqueue("sms", "sms:order:X", {"a": 1})
    assert not enqueue("sms", "sms:order:X", {"a": 2})
    assert Outbox.select().count() == 1


def test_one_giver_racing_with_themself_never_holds_more_than_the_limit(config):
    """Eight shares of 4 at once from one giver, limit 20: the giver's row serialises them."""
    config = replace(config, shares=replace(config.shares, max_shares_per_hour=100))
    Gift.update(stock=1000, committed=0).where(Gift.id == "coffee").execute()
    User.create(openid="o_hoarder")
    made, refused = share_at_once(config, "o_hoarder", "coffee", 4)
    assert len(made) == 5 and set(refused) == {"giver_limit"}
    assert Gift.get_by_id("coffee").committed == 20


def test_one_person_ordering_twice_at_once_gets_one_order_and_takes_one_unit(config):
    """The second `place` starts while the first, its order made, has not committed: it waits
    (for the person's row, which `_place` touches first, and the share's lock), then reads the
    first's order with the share, or, had it read before, the unique key on (share, recipient)
    refuses a second. One order, one unit, and the second is told the first."""
    Gift.update(stock=10, committed=0).where(Gift.id == "scarf").execute()
    User.create(openid="o_giver")
    User.create(openid="o_friend")
    share = shares.create(config, "o_giver", "scarf", 2, "", utcnow())
    inside, results = threading.Event(), {}

    class Slow(Notices):
        def order_placed(self, order):
            super().order_placed(order)
            if threading.current_thread().name == "first":
                inside.set()
                time.sleep(0.5)  # the share stays locked, the order not yet committed

    notices = Slow(config, Renderer(config))
    now = utcnow()
    slot = delivery_slots(config.delivery, now.replace(tzinfo=dt.UTC))[0]
    answers = OrderAnswers.from_answers({**XIAOHONG, "delivery": slot.key}, "Asia/Shanghai")

    def place(name):
        try:
            results[name] = orders.place(notices, share.token, "o_friend", answers, "web", now)
        finally:
            storage.db.close()

    first = threading.Thread(target=place, args=("first",), name="first")
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=place, args=("second",), name="second")
    second.start()
    first.join()
    second.join()
    (order, created), (again, created_again) = results["first"], results["second"]
    assert (created, created_again) == (True, False) and again.order_no == order.order_no
    assert Order.select().count() == 1 and Share.get_by_id(share.id).claimed == 1
    assert Gift.get_by_id("scarf").committed == 2  # the share's two units, reserved once


def test_a_claims_share_and_its_order_are_read_in_one_statement(config, monkeypatch):
    """领取 and 确认 read the share with the person's order from it: the order is not asked for
    again in that transaction (a second time it is, as it may have changed)."""
    User.create(openid="o_giver")
    share = shares.create(config, "o_giver", "scarf", 2, "", utcnow())
    ran = []
    run = prebuilt.run
    monkeypatch.setattr(
        prebuilt, "run", lambda name, params=(): ran.append(name) or run(name, params)
    )
    with storage.write_transaction():
        assert shares.by_token(share.token, "o_friend").id == share.id
        assert orders.existing_order(share, "o_friend") is None
        assert orders.existing_order(share, "o_friend") is None
        assert orders_sql.share_locked(share.token, "o_friend").id == share.id
        assert orders.existing_order(share, "o_friend") is None
    assert ran == ["share_and_order", "order_of", "share_locked"]
    with storage.write_transaction():
        assert shares.by_token("AAAAAAAAAAAAAAAAAAAAAA", "o_friend") is None
