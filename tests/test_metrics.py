"""GET /metrics: what happened, in Prometheus' text format, for this machine only."""

from __future__ import annotations

import pytest
import requests
from helpers import PAID, browser, claim, outward_ip, share_in_chat
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


def scrape(bot, **headers) -> dict[tuple[str, tuple], float]:
    r = requests.get(f"{bot.url}/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


def test_metrics_count_messages_replies_orders_and_the_outbox(bot):
    before = scrape(bot)
    bot.wx.text("o_alice", "礼品")
    bot.wx.click("o_alice", "GIFTS")
    token = share_in_chat(bot)
    claim(bot, browser(bot, "o_friend"), token)
    after = scrape(bot)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("giftbot_messages_total", kind="text") == 6  # 礼品 and the share dialogue (5)
    assert grew("giftbot_messages_total", kind="event") == 1
    # the gift picked, the share card (in wechatpay mode the card is a message, once paid)
    assert grew("giftbot_replies_total", type="Card") == (1 if PAID else 2)
    assert grew("giftbot_orders_total", channel="web") == 1
    assert grew("giftbot_callback_seconds_count") == 7
    assert after[("giftbot_outbox_rows", (("status", "pending"),))] == 2  # the SMS and the notice
    assert after[("giftbot_outbox_oldest_pending_seconds", ())] >= 0
    bot.drain()
    drained = scrape(bot)
    assert drained[("giftbot_outbox_rows", (("status", "sent"),))] == (3 if PAID else 2)
    assert drained[("giftbot_outbox_oldest_pending_seconds", ())] == 0
    key = ("giftbot_outbox_sends_total", (("kind", "sms"), ("result", "sent")))
    assert drained[key] - after.get(key, 0) == 1


def test_metrics_refuse_a_request_that_came_through_a_proxy(bot):
    for header in ("X-Real-IP", "X-Forwarded-For"):
        r = requests.get(f"{bot.url}/metrics", headers={header: "203.0.113.9"}, timeout=10)
        assert r.status_code == 403


@pytest.mark.skipif(outward_ip() is None, reason="this machine has no non-loopback address")
@pytest.mark.parametrize("public", [False, True])
def test_metrics_answer_another_machine_only_when_configured(bot_factory, public):
    bot = bot_factory(server={"metrics_public": public})
    ip = outward_ip()

    async def listen_outward() -> int:
        sockets = bind_sockets(0, ip)
        HTTPServer(bot.app).add_sockets(sockets)
        return sockets[0].getsockname()[1]

    port = bot.run(listen_outward())
    r = requests.get(f"http://{ip}:{port}/metrics", timeout=10)
    assert r.status_code == (200 if public else 403)
