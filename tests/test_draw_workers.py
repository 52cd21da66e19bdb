"""A draw is drawn exactly once by real `serve --workers 2` processes racing at start-up and
restarted (tests/cluster.py), on SQLite and PostgreSQL: one set of winners, one message each."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

from cluster import Server
from helpers import BOTH_DATABASES, confirm_card

from storage.models import DrawEntry, Gift, Outbox, Share, utcnow

ENTRANTS = 6
WINNERS = 3


def settled(cluster, count: int, seconds: float = 15) -> list[dict]:
    """The WeChat messages sent once `count` arrived and no outbox row is pending."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pending = Outbox.select().where(Outbox.status == "pending").exists()
        if len(cluster.wechat.messages) >= count and not pending:
            break
        time.sleep(0.1)
    return list(cluster.wechat.messages)


@BOTH_DATABASES
def test_two_workers_and_restarts_draw_once(cluster):
    first = cluster.start("first", workers=2)
    for text in ("1", "抽奖", str(WINNERS), "跳过", "跳过"):
        first.wx.text("o_giver", text)
    token = confirm_card(first.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    for n in range(ENTRANTS):
        assert "已参与" in first.wx.text(f"o_e{n}", f"领取 {token}")["Content"]
    Share.update(draw_at=utcnow() - dt.timedelta(seconds=1)).execute()  # its time has come

    first.kill()  # both servers' workers start at once: four sweeps race for the draw
    other = Server(cluster, "second", workers=2)
    cluster.servers.append(other)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda server: server.start(), [first, other]))
    messages = settled(cluster, ENTRANTS + 1)
    first.kill()
    first.start()  # and once more after a crash: nothing left to draw

    share = Share.get()
    assert share.drawn_at is not None and share.quantity == WINNERS
    assert DrawEntry.select().where(DrawEntry.won).count() == WINNERS
    assert Outbox.select().where(Outbox.key.startswith("draw:")).count() == ENTRANTS + 1
    draw_messages = [m for m in settled(cluster, ENTRANTS + 1) if m["touser"] != "o_giver"
                     or "开奖" in m["text"]["content"]]  # fmt: skip
    by_user = sorted(m["touser"] for m in draw_messages)
    assert by_user == sorted(["o_giver", *(f"o_e{n}" for n in range(ENTRANTS))]), "one each"
    winners = [m for m in messages if "恭喜" in m["text"]["content"]]
    assert len(winners) == WINNERS
    assert Gift.get_by_id("tea-longjing").committed == WINNERS
