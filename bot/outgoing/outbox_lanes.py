"""How a pass of the outbox sends its rows: side by side, a lane per person.

Usage (bot/outgoing/outbox.py)::

    sent, drained = await send(rows, worker_sends_one, records.flush, claim_more, 20, busy)
    # rows: as first leased, oldest first; drained: the last lease found no more rows due

A vendor answers in 100–300 ms. One row at a time, one process sent about 6 rows a second
against a stand-in answering in 150 ms, fewer than a campaign's claims queue (2.4 a claim;
issue 27). So up to LANES rows are out at once:

- each person's rows (a payload's `openid` or `phone`) go in one lane, in order: a person's
  news never overtakes itself, and no two of their notices race for the same one-time
  subscription;
- rows addressed to nobody (payments, a greeting's media) go in one lane per kind, one
  after another, as before;
- while a lane is free and the last lease came back full, the pass leases more rows
  (`claim_more`), up to MOST_CLAIMED in all: a giver told of many claims keeps one lane
  busy while the others go on with the next rows. A row for a person whose lane is still
  sending joins that lane.

While the process's messages queue (`busy`: the server has as many in hand as database jobs
to run them, so the next one waits; handlers/app.py), no new lane starts beside one still
sending: the answers come first, and the outbox catches up once they are done, as it did
when it sent one row at a time (under full load it sent about 40 rows a second while the
claims queued 230).

A lane that ends while others still send writes the records waiting (`flush`), so no send's
record waits behind another's. A worker killed mid-pass leaves unrecorded the rows its lanes
had in flight, up to LANES: a channel with `check` asks before sending them again, one
without sends them again once their lease runs out.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from storage.models import Outbox

LANES = 8  # rows out at once; the Http client keeps 10 connections (bot/outgoing/http.py)
MOST_CLAIMED = 200  # rows one pass leases in all, so that a stop is heard between passes


async def send(
    rows: list[Outbox],
    send_one: Callable[[Outbox], Awaitable[None]],
    flush: Callable[[], Awaitable[None]],
    claim_more: Callable[[], Awaitable[list[Outbox]]],
    batch: int,
    busy: Callable[[], bool],
) -> tuple[int, bool]:
    """Every row through `send_one`, in up to LANES lanes (one while `busy()`), leasing more
    (`claim_more`, up to `batch` rows each time) while a lane is free and the last lease
    came back full; how many rows were sent, and whether the last lease found fewer than it
    asked (none left due). The first failure is raised once every lane has ended (no send
    is cut short by another's failure)."""
    waiting: dict[str, deque[Outbox]] = {}  # each person's rows not sent yet, lane or not
    ready: deque[str] = deque()  # the people whose rows wait for a lane
    running: set[asyncio.Task] = set()
    failures: list[BaseException] = []
    claimed = 0

    def take(new: list[Outbox]) -> bool:
        """Queue `new` by person; whether more may be due."""
        nonlocal claimed
        claimed += len(new)
        for row in new:
            to = whom(row)
            if to not in waiting:
                waiting[to] = deque()
                ready.append(to)
            waiting[to].append(row)
        return len(new) >= batch

    async def lane(to: str) -> None:
        rows = waiting[to]
        while rows:
            await send_one(rows.popleft())
        del waiting[to]  # rows for them from now on start a lane of their own
        if len(running) > 1:  # others still sending
            await flush()

    full = take(rows)
    try:
        while True:
            lanes = 1 if busy() else LANES
            while ready and len(running) < lanes and not failures:
                running.add(asyncio.ensure_future(lane(ready.popleft())))
            if full and claimed < MOST_CLAIMED and len(running) < lanes and not failures:
                try:
                    full = take(await claim_more())
                except Exception as exc:  # raised once the lanes out have ended
                    failures.append(exc)
                continue
            if not running:
                if failures:
                    raise failures[0]
                return claimed, not full
            ended, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            running -= ended
            failures += [task.exception() for task in ended if task.exception() is not None]
    except asyncio.CancelledError:  # the worker stopped mid-pass: so do its lanes
        for task in running:
            task.cancel()
        raise


def whom(row: Outbox) -> str:
    """The lane a row goes in: the person it reaches, else its kind."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    person = payload.get("openid") or payload.get("phone")
    return f"to:{person}" if person else f"kind:{row.kind}"
