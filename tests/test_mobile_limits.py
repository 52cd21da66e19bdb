"""The limits on login codes (bot/mobile_claims.py) behind a proxy, as the shipped nginx
serves the bot (`xheaders`): an IPv6 client counts per /64, each count holds when requests
arrive at once (threads and processes, both databases), a share and the whole account have
hourly caps, and /metrics counts codes sent and refused by reason."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import example_config
from helpers import BOTH_DATABASES, DESKTOP_UA, monday_morning, share_through
from prometheus_client.parser import text_string_to_metric_families

from bot.config import ConfigError, parse
from bot.gifting.mobile_claims import network_of
from storage.models import MobileCode

BEHIND_NGINX = {"server": {"xheaders": True}, "shares": {"max_shares_per_hour": 20}}


@pytest.fixture
def proxied(bot_factory):
    bot = bot_factory(**BEHIND_NGINX)
    monday_morning(bot)
    return bot


def ask_code(url: str, token: str, mobile: str, ip: str) -> requests.Response:
    """A browser at `ip` (as nginx's X-Real-IP says) asking a code for `mobile`."""
    session = requests.Session()
    session.headers.update({"User-Agent": DESKTOP_UA, "X-Real-IP": ip})
    session.get(f"{url}/claim/{token}", timeout=10)
    data = {"phone": mobile, "_xsrf": session.cookies.get("_xsrf")}
    return session.post(f"{url}/claim/{token}/mobile", data=data, timeout=30)


def at_once(calls) -> list[requests.Response]:
    """Every call in a thread of its own, released together."""
    start = threading.Barrier(len(calls))

    def run(call):
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def mobile(n: int) -> str:
    return f"1390000{n:04d}"


def shares_of(bot, count: int) -> list[str]:
    return [share_through(bot.wx, giver=f"o_giver{n % 4}") for n in range(count)]


def test_an_ipv6_client_is_counted_per_64_and_an_ipv4_one_per_address():
    assert network_of("2001:db8:7:1::5") == network_of("2001:db8:7:1:ffff:1:2:3")
    assert network_of("2001:db8:7:1::5") == "2001:db8:7:1::/64"
    assert network_of("2001:db8:7:2::5") != network_of("2001:db8:7:1::5")
    assert network_of("203.0.113.7") == "203.0.113.7" != network_of("203.0.113.8")
    assert network_of("::ffff:203.0.113.7") == "203.0.113.7", "IPv4 written as IPv6"


@BOTH_DATABASES
def test_fifteen_addresses_of_one_ipv6_network_get_one_code_a_minute(proxied):
    bot = proxied
    token = share_through(bot.wx)
    answers = [ask_code(bot.url, token, mobile(n), f"2001:db8:7:1::{n:x}") for n in range(15)]
    assert [r.status_code for r in answers] == [200] + [429] * 14
    assert all("这个网络" in r.text for r in answers[1:])
    other = ask_code(bot.url, token, mobile(99), "2001:db8:7:2::1")
    assert other.status_code == 200, "the next /64 is another subscriber"
    bot.drain()
    assert len(bot.sms.received) == 2 and MobileCode.select().count() == 2


@BOTH_DATABASES
def test_twelve_requests_at_once_from_one_address_send_one_code(proxied):
    """Different shares and numbers, so neither's lock serialises them: the address's does."""
    bot = proxied
    tokens = shares_of(bot, 12)
    calls = [lambda n=n: ask_code(bot.url, tokens[n], mobile(n), "198.51.100.4") for n in range(12)]
    answers = at_once(calls)
    assert sorted(r.status_code for r in answers) == [200] + [429] * 11
    assert MobileCode.select().count() == 1


@BOTH_DATABASES
def test_a_share_and_the_whole_account_have_hourly_caps(bot_factory):
    bot = bot_factory(**BEHIND_NGINX, sms={"codes_per_share_hour": 3, "codes_per_hour": 5})
    monday_morning(bot)
    first, second = shares_of(bot, 2)
    for n in range(3):
        assert ask_code(bot.url, first, mobile(n), f"203.0.113.{n}").status_code == 200
    capped = ask_code(bot.url, first, mobile(3), "203.0.113.3")
    assert capped.status_code == 429 and "这份礼物" in capped.text
    for n in range(4, 6):
        assert ask_code(bot.url, second, mobile(n), f"203.0.113.{n}").status_code == 200
    busy = ask_code(bot.url, second, mobile(6), "203.0.113.6")
    assert busy.status_code == 429 and "验证码的人太多" in busy.text
    bot.clock.offset += dt.timedelta(hours=1, seconds=1)
    assert ask_code(bot.url, second, mobile(7), "203.0.113.7").status_code == 200
    bot.drain()
    assert len(bot.sms.received) == 6


@BOTH_DATABASES
def test_the_account_cap_holds_when_requests_arrive_at_once(bot_factory):
    bot = bot_factory(**BEHIND_NGINX, sms={"codes_per_hour": 5})
    monday_morning(bot)
    tokens = shares_of(bot, 12)
    calls = [lambda n=n: ask_code(bot.url, tokens[n], mobile(n), f"203.0.113.{n}")
             for n in range(12)]  # fmt: skip
    answers = at_once(calls)
    assert sorted(r.status_code for r in answers) == [200] * 5 + [429] * 7
    assert MobileCode.select().count() == 5


@BOTH_DATABASES
def test_two_server_processes_send_one_code_to_one_address_at_once(cluster):
    """Two `serve` processes on one database, six requests each, from one address."""
    servers = [cluster.start(name, **BEHIND_NGINX) for name in ("one", "two")]
    tokens = [share_through(servers[0].wx, giver=f"o_giver{n % 4}") for n in range(12)]
    calls = [lambda n=n: ask_code(servers[n % 2].url, tokens[n], mobile(n), "198.51.100.4")
             for n in range(12)]  # fmt: skip
    answers = at_once(calls)
    assert sorted(r.status_code for r in answers) == [200] + [429] * 11
    assert MobileCode.select().count() == 1


def scrape(bot) -> dict[tuple[str, tuple], float]:
    text = requests.get(f"{bot.url}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_codes_sent_and_refused_by_reason(bot):
    monday_morning(bot)
    token = share_through(bot.wx)
    before = scrape(bot)
    assert ask_code(bot.url, token, mobile(1), "127.0.0.1").status_code == 200
    assert ask_code(bot.url, token, mobile(1), "127.0.0.1").status_code == 429
    assert ask_code(bot.url, token, mobile(2), "127.0.0.1").status_code == 429
    assert ask_code(bot.url, token, "12345", "127.0.0.1").status_code == 400
    after = scrape(bot)

    def grew(result: str) -> float:
        key = ("giftbot_login_codes_total", (("result", result),))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("sent") == 1
    assert grew("mobile_rate_minute") == 1 and grew("mobile_rate_ip") == 1
    assert grew("phone_invalid") == 1


@pytest.mark.parametrize("key", ["codes_per_hour", "codes_per_share_hour"])
def test_the_code_caps_are_checked_at_start_up(key):
    raw = example_config()
    assert getattr(parse(raw).sms, key) > 0, "on by default"
    for wrong, reason in ((0, "greater than 0"), (-3, "greater than 0"), ("9", "integer")):
        with pytest.raises(ConfigError) as refused:
            parse({**raw, "sms": {**raw["sms"], key: wrong}})
        assert refused.value.key == f"sms.{key}" and reason in refused.value.reason
