"""The outbox's lanes over random passes (bot/outgoing/outbox_lanes.py), with no database: rows
for a few people and for nobody, leased a batch at a time, each send taking its own number of
turns of the loop, the server busy or not from one moment to the next. Whatever the order of
events: every row leased is sent once; a person's rows in order and never two at once; rows to
nobody of one kind likewise; never more than LANES out, and one at a time while the server stays
busy; and the pass says rightly whether its last lease found the outbox drained."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.outgoing.outbox_lanes import LANES, MOST_CLAIMED, send
from storage.models import Outbox

PEOPLE = ["o_ann", "o_bo", "o_cy", "+8613800138000", "+8613900139000", None]  # None: nobody
KINDS = ["media", "pay_refund"]  # what a row to nobody may be

rows_strategy = st.lists(
    st.tuples(st.sampled_from(PEOPLE), st.sampled_from(KINDS), st.integers(0, 4)), max_size=60
)


def whom(row: Outbox) -> str:
    """Whose row it is, as the lanes must see it: the person, else (to nobody) its kind."""
    person = row.payload.get("openid") or row.payload.get("phone")
    return person or f"nobody, {row.kind}"


def outbox_of(due: list[tuple]) -> list[Outbox]:
    rows = []
    for n, (person, kind, _) in enumerate(due, 1):
        if person is None:
            rows.append(Outbox(id=n, kind=kind, payload={"n": n}))
        elif person.startswith("+"):
            rows.append(Outbox(id=n, kind="sms", payload={"phone": person, "n": n}))
        else:
            rows.append(Outbox(id=n, kind="wechat_text", payload={"openid": person, "n": n}))
    return rows


def play(due: list[tuple], batch: int, busy) -> tuple[int, bool, list[Outbox], int, list[int]]:
    """One pass over `due`: (its count, drained, the rows as their sends ended, the most out
    at once, each lease's size)."""
    outbox = outbox_of(due)
    turns = {n: t for n, (_, _, t) in enumerate(due, 1)}
    out: list[str] = []
    sent: list[Outbox] = []
    most = 0
    leases: list[int] = []

    async def send_one(row: Outbox) -> None:
        nonlocal most
        lane = whom(row)
        assert lane not in out, f"two sends in the lane {lane} at once"
        out.append(lane)
        most = max(most, len(out))
        for _ in range(turns[row.id]):
            await asyncio.sleep(0)
        out.remove(lane)
        sent.append(row)

    async def flush() -> None:
        await asyncio.sleep(0)

    async def claim_more() -> list[Outbox]:
        await asyncio.sleep(0)
        taken, outbox[:] = outbox[:batch], outbox[batch:]
        leases.append(len(taken))
        return taken

    async def main() -> tuple[int, bool]:
        return await send(await claim_more(), send_one, flush, claim_more, batch, busy)

    count, drained = asyncio.run(main())
    return count, drained, sent, most, leases


def in_order_by_lane(sent: list[Outbox]) -> bool:
    by_lane: dict[str, list[int]] = {}
    for row in sent:
        by_lane.setdefault(whom(row), []).append(row.id)
    return all(ids == sorted(ids) for ids in by_lane.values())


@settings(max_examples=300, deadline=None)
@given(
    due=rows_strategy,
    batch=st.integers(1, 12),
    moments=st.lists(st.booleans(), min_size=1, max_size=30),
)
def test_every_row_once_each_lane_in_order_and_never_two_in_a_lane_at_once(due, batch, moments):
    busy_at = iter(moments * 50)
    count, drained, sent, most, leases = play(due, batch, lambda: next(busy_at, False))
    assert count == sum(leases) == len(sent) == len({row.id for row in sent})
    assert drained == (leases[-1] < batch), "drained: the last lease came back short"
    assert drained or sum(leases) >= MOST_CLAIMED, "not drained: stopped at the pass's limit"
    assert not drained or sum(leases) == len(due), "drained with rows still due"
    assert in_order_by_lane(sent)
    assert most <= LANES


@settings(max_examples=100, deadline=None)
@given(due=rows_strategy, batch=st.integers(1, 12))
def test_while_the_server_stays_busy_the_rows_go_one_at_a_time(due, batch):
    count, drained, sent, most, leases = play(due, batch, lambda: True)
    assert count == len(sent) == sum(leases)
    assert most <= 1
    assert in_order_by_lane(sent)


@settings(max_examples=100, deadline=None)
@given(due=rows_strategy, batch=st.integers(1, 12))
def test_with_room_a_pass_sends_everything_due_and_says_the_outbox_is_drained(due, batch):
    count, drained, sent, most, leases = play(due, batch, lambda: False)
    assert (count, drained) == (len(due), True)  # 60 rows at most: under the pass's limit
    assert in_order_by_lane(sent)
    assert most <= LANES


def test_a_pass_stops_leasing_at_its_limit_and_says_more_may_be_due():
    due = [(f"o_{n}", "media", 0) for n in range(MOST_CLAIMED + 30)]
    count, drained, sent, most, leases = play(due, 20, lambda: False)
    assert (count, drained) == (MOST_CLAIMED, False)
    assert len(sent) == MOST_CLAIMED and most <= LANES
