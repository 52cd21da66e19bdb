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


def status(url: str, **headers) -> int:
    return requests.get(f"{url}/metrics", headers=headers, timeout=10).status_code


def test_behind_the_configured_proxy_only_a_client_it_names_on_this_machine_is_answered(
    bot_factory,
):
    """`[server] xheaders`: the proxy on this machine names each client it forwards."""
    bot = bot_factory(server={"xheaders": True})
    for named in ("203.0.113.9", "2001:db8::1"):
        assert status(bot.url, **{"X-Real-IP": named}) == 403
        assert status(bot.url, **{"X-Forwarded-For": named}) == 403
        assert status(bot.url, **{"X-Real-IP": named, "X-Forwarded-For": "127.0.0.1"}) == 403
    assert status(bot.url, **{"X-Real-IP": "127.0.0.1"}) == 200, "a client here, through it"
    assert status(bot.url) == 200, "the scraper here asks 127.0.0.1 straight: no proxy named"


def test_without_a_proxy_configured_no_header_speaks_for_the_socket(bot):
    """Review 2, F11: the answer was decided by which headers were missing. Now by the socket's
    peer (and a configured proxy's word): a header from this machine changes nothing."""
    for header in ("X-Real-IP", "X-Forwarded-For", "CF-Connecting-IP", "True-Client-IP"):
        assert status(bot.url, **{header: "203.0.113.9"}) == 200, header
    assert status(bot.url, Forwarded="for=203.0.113.9;proto=https") == 200


@pytest.mark.skipif(outward_ip() is None, reason="this machine has no non-loopback address")
@pytest.mark.parametrize("xheaders", [False, True], ids=["no-proxy", "proxy"])
@pytest.mark.parametrize("public", [False, True])
def test_metrics_answer_another_machine_only_when_configured(bot_factory, public, xheaders):
    bot = bot_factory(server={"metrics_public": public, "xheaders": xheaders})
    ip = outward_ip()

    async def listen_outward() -> int:
        sockets = bind_sockets(0, ip)
        HTTPServer(bot.app, xheaders=xheaders).add_sockets(sockets)
        return sockets[0].getsockname()[1]

    port = bot.run(listen_outward())
    for headers in ({}, {"X-Real-IP": "127.0.0.1"}, {"X-Forwarded-For": "127.0.0.1"}):
        r = requests.get(f"http://{ip}:{port}/metrics", headers=headers, timeout=10)
        assert r.status_code == (200 if public else 403), headers
