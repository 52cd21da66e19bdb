"""`python -m bot serve --workers N`: N processes on one port, the database their only link.

Each test starts a real `serve --workers 3` (tests/cluster.py) and looks at it from outside:
the processes, the replies, the outbox, /metrics, and SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from conftest import COOKIE_SECRET
from helpers import BOTH_DATABASES, share_through
from prometheus_client.parser import text_string_to_metric_families
from tornado.web import create_signed_value
from wechat_sim import seen

from storage.models import InboundMessage, Order, Share

WORKERS = 3


def workers_of(server) -> list[int]:
    """The worker processes `serve` forked (Linux: the kernel lists a task's children)."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def metric(server, name: str, **labels) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@BOTH_DATABASES
def test_workers_share_one_port_and_every_one_of_them_answers(cluster):
    server = cluster.start("many", workers=WORKERS)
    assert len(workers_of(server)) == WORKERS
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: server.wx.text(f"o_{i}", "礼品"), range(60)))
    assert all("明前龙井礼盒" in r["Content"] for r in replies)
    assert InboundMessage.select().count() == 60
    log = server.log_path.read_text()
    pids = {
        line.split('"pid": ')[1].split("}")[0] for line in log.splitlines() if '"listening"' in line
    }
    assert len(pids) == WORKERS, "each worker listens"
    assert metric(server, "giftbot_messages_total", kind="text") == 60, "metrics add up all"


@BOTH_DATABASES
def test_a_retry_reaching_another_worker_acts_once(cluster):
    server = cluster.start("many", workers=WORKERS)
    for text in ("1", "送", "1", "跳过"):
        server.wx.text("o_giver", text)
    confirm = server.wx.text_xml("o_giver", "确认", msg_id=424242)
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda _: server.wx.push(confirm), range(6)))
    assert all(seen(r) == seen(replies[0]) for r in replies)
    assert Share.select().count() == 1


@BOTH_DATABASES
def test_the_background_work_is_shared_and_each_sms_goes_out_once(cluster):
    server = cluster.start("many", workers=WORKERS)
    token = share_through(server.wx, "o_giver", quantity="5")
    for n in range(5):
        wx = server.wx
        for text in (
            f"领取 {token}",
            f"收件人{n}",
            f"1380013800{n}",
            "广东省深圳市南山区科技园南区8栋1201",
            "1",
            "确认",
        ):
            reply = wx.text(f"o_friend{n}", text)
        assert "领取成功" in reply["Content"], reply["Content"]
    assert Order.select().count() == 5
    sent = cluster.wait_for_sms(5)
    assert sorted(m["phone"] for m in sent) == [f"+861380013800{n}" for n in range(5)]
    assert len(sent) == 5, "no SMS twice, whichever worker took its row"


@BOTH_DATABASES
def test_a_worker_that_dies_is_started_again(cluster):
    server = cluster.start("many", workers=WORKERS)
    victim = workers_of(server)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        alive = [p for p in workers_of(server) if p != victim and running(p)]
        if len(alive) == WORKERS:
            break
        time.sleep(0.1)
    assert len(alive) == WORKERS
    assert server.wx.text("o_after", "礼品")["MsgType"] == "text"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sigterm_stops_every_worker_cleanly(cluster):
    server = cluster.start("many", workers=WORKERS)
    children = workers_of(server)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(15) == 0
    assert time.monotonic() - started < 10
    assert not [c for c in children if running(c)]
    log = server.log_path.read_text()
    assert log.count('"event": "stopped"') == WORKERS and "workers stopped" in log


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sigterm_lets_a_request_in_flight_finish(cluster):
    """A gift page waiting on a slow WeChat when SIGTERM comes still gets its answer."""
    server = cluster.start("one")
    token = share_through(server.wx, "o_giver")
    cookie = create_signed_value(COOKIE_SECRET, "gb_openid", "o_friend").decode()
    cluster.wechat.slow_next("/cgi-bin/qrcode/create", 1.5)
    with ThreadPoolExecutor(1) as pool:
        page = pool.submit(
            requests.get, f"{server.url}/claim/{token}", cookies={"gb_openid": cookie}, timeout=10
        )
        time.sleep(0.5)  # the page is waiting on WeChat now
        server.process.send_signal(signal.SIGTERM)
        answer = page.result()
    assert answer.status_code == 200 and "领取礼物" in answer.text
    assert server.process.wait(15) == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sigterm_lets_a_push_in_flight_finish(cluster):
    """A push waiting for the database's write lock when SIGTERM comes still gets its reply:
    the callback answers pushes ahead of tornado.web (handlers/wechat.py) and counts them in
    flight as the pages are counted."""
    server = cluster.start("one")
    path = cluster.db_url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    try:
        with ThreadPoolExecutor(1) as pool:
            reply = pool.submit(server.wx.text, "o_late", "礼品")
            time.sleep(0.5)  # the push is waiting for the lock now
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            other.execute("ROLLBACK")
            assert "礼物清单" in reply.result()["Content"]
    finally:
        other.close()
    assert server.process.wait(15) == 0
    assert InboundMessage.select().where(InboundMessage.openid == "o_late").count() == 1
