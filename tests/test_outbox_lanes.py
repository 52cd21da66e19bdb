"""The outbox sends a pass's rows side by side, a lane per person (bot/outgoing/outbox_lanes.py),
on SQLite and on PostgreSQL: each person's rows in order and never two at once, rows addressed to
nobody one kind at a time, at most LANES out together, every row sent and recorded once, and a
lane that ends while others still send leaves no record waiting behind their sends."""

from __future__ import annotations

import asyncio
import logging

import pytest
from storing import migrated

from bot.outgoing.outbox import Channel, Worker, enqueue
from bot.outgoing.outbox_lanes import LANES
from storage.models import Outbox
from storage.runner import Runner

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def database(db_url):
    with migrated(db_url):
        yield


class Vendor:
    """A stand-in that answers each send after a moment and sees what is out at once."""

    def __init__(self, seconds: float = 0.02):
        self.seconds = seconds
        self.out: list[str] = []  # whom each send in flight is to
        self.most = 0
        self.sent: list[tuple[str, int]] = []  # (to whom, n) as each send ended

    async def send(self, payload: dict, ref: str) -> None:
        to = payload.get("openid") or payload.get("phone") or f"nobody:{payload['n']}"
        assert to not in self.out or to.startswith("nobody"), f"two sends to {to} at once"
        self.out.append(to)
        self.most = max(self.most, len(self.out))
        await asyncio.sleep(self.seconds)
        self.out.remove(to)
        self.sent.append((to, payload["n"]))


def worker(vendor: Vendor, batch: int = 40, **more: Channel) -> Worker:
    channels = {kind: Channel(vendor.send, 10, 4) for kind in ("wechat_text", "sms", "media")}
    return Worker(channels | more, Runner.for_database(4), batch=batch)


def statuses() -> list[str]:
    return [row.status for row in Outbox.select().order_by(Outbox.id)]


def test_people_get_their_rows_side_by_side_each_persons_in_order(database, caplog):
    caplog.set_level(logging.WARNING, logger="gift_bot.outbox")
    vendor = Vendor()
    n = 0
    for round_ in range(3):  # each person's rows interleaved with the others' by id
        for person in ("o_ann", "o_bo", "o_cy", "o_di"):
            n += 1
            enqueue("wechat_text", f"wechat_text:{person}:{round_}", {"openid": person, "n": n})
        n += 1
        enqueue("sms", f"sms:order:{round_}", {"phone": "+8613800138000", "n": n})
        n += 1
        enqueue("media", f"media:{round_}", {"media": round_, "n": n})
    assert asyncio.run(worker(vendor).run_once()) == n == 18
    assert statuses() == ["sent"] * 18
    assert sorted(k for _, k in vendor.sent) == list(range(1, 19)), "each row sent once"
    by_whom: dict[str, list[int]] = {}
    for to, k in vendor.sent:
        by_whom.setdefault(to.split(":")[0], []).append(k)
    assert all(ks == sorted(ks) for ks in by_whom.values()), f"out of order: {vendor.sent}"
    assert vendor.most == 6, "four people, a phone and the media's kind: six lanes at once"
    assert not caplog.records, "no record written twice (a lost lease would say so)"
    assert all(row.lease_until is None for row in Outbox.select())


def test_no_more_than_lanes_rows_are_out_at_once(database):
    vendor = Vendor()
    for n in range(1, 21):
        enqueue("wechat_text", f"wechat_text:many:{n}", {"openid": f"o_{n}", "n": n})
    assert asyncio.run(worker(vendor).run_once()) == 20
    assert vendor.most == LANES
    assert sorted(k for _, k in vendor.sent) == list(range(1, 21))
    assert statuses() == ["sent"] * 20


def test_a_giver_told_of_many_claims_keeps_one_lane_while_the_next_rows_go_on(database):
    """Six notices to one giver come first, then six people's SMS, leased four at a time: the
    first lease is all the giver's, so the pass leases more while lanes are free, and the
    six SMS go out beside the giver's lane instead of after it."""
    vendor = Vendor(seconds=0.05)
    for n in range(1, 7):
        enqueue("wechat_text", f"wechat_text:giver:{n}", {"openid": "o_giver", "n": n})
    for n in range(7, 13):
        enqueue("sms", f"sms:order:{n}", {"phone": f"+86138001380{n:02d}", "n": n})
    assert asyncio.run(worker(vendor, batch=4).run_once()) == 12
    assert statuses() == ["sent"] * 12
    order = [k for _, k in vendor.sent]
    assert [k for k in order if k <= 6] == [1, 2, 3, 4, 5, 6], "the giver's in order"
    fourth = order.index(4)
    assert all(order.index(k) < fourth for k in range(7, 13)), f"the SMS waited: {order}"
    assert vendor.most >= 4


def test_while_the_servers_messages_queue_no_lane_starts_beside_another(database):
    """Under full load the answers come first: the pass sends one row at a time, as before
    the lanes, and widens again as soon as the server has room."""
    vendor = Vendor()
    for n in range(1, 11):
        enqueue("wechat_text", f"wechat_text:busy:{n}", {"openid": f"o_{n}", "n": n})
    chosen = worker(vendor, batch=5)
    chosen.busy = lambda: len(vendor.sent) < 5  # busy for the first lease's rows
    assert asyncio.run(chosen.run_once()) == 10
    assert [k for _, k in vendor.sent][:5] == [1, 2, 3, 4, 5], "one at a time, in order"
    assert vendor.most > 1, "side by side once the server had room"
    assert statuses() == ["sent"] * 10


def test_the_server_is_busy_once_it_has_more_messages_in_hand_than_database_jobs(bot):
    inflight, jobs = bot.app.settings["inflight"], bot.config.database.threads
    busy = bot.services.worker.busy
    assert [busy() for inflight[0] in (0, jobs - 1, jobs, jobs + 5)] == [False, False, True, True]
    inflight[0] = 0


def test_rows_to_nobody_go_one_at_a_time_as_before(database):
    vendor = Vendor()
    for n in range(1, 5):
        enqueue("media", f"media:{n}", {"media": n, "n": n})
    asyncio.run(worker(vendor).run_once())
    assert vendor.most == 1
    assert [k for _, k in vendor.sent] == [1, 2, 3, 4]


def test_a_lane_that_ends_while_another_still_sends_writes_its_records_at_once(database):
    """Ann's and Bo's sends end while Cy's hangs; the worker is then killed. Their rows are
    recorded sent (their lanes wrote the records as they ended), so only Cy's goes again."""
    vendor = Vendor(seconds=0)
    hung = asyncio.Event()

    async def send(payload, ref):
        if payload["openid"] == "o_cy":
            hung.set()
            await asyncio.Event().wait()  # never answers
        await vendor.send(payload, ref)

    for n, person in enumerate(("o_ann", "o_bo", "o_cy"), 1):
        enqueue("wechat_text", f"wechat_text:{person}", {"openid": person, "n": n})
    chosen = worker(vendor, wechat_text=Channel(send, 10, 4))

    async def main():
        passing = asyncio.ensure_future(chosen.run_once(record=False))
        await asyncio.wait_for(hung.wait(), 5)
        for _ in range(200):
            if Outbox.select().where(Outbox.status == "sent").count() == 2:
                break
            await asyncio.sleep(0.02)
        passing.cancel()  # the worker dies with Cy's send out
        with pytest.raises(asyncio.CancelledError):
            await passing

    asyncio.run(main())
    assert statuses() == ["sent", "sent", "pending"]
    assert Outbox.get(Outbox.key == "wechat_text:o_cy").lease_until is not None, "in flight"
