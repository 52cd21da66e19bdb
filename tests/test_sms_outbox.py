"""An order SMS through each vendor's fake and the real outbox, where the vendors' documents
say what to do: a send whose answer never came is checked against the vendor's records
before it is sent again; a day-level limit ends it at once; a minute-level one is retried.
On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fakes.aliyun_sms import FakeAliyun
from fakes.tencent_sms import FakeTencent
from helpers import BOTH_DATABASES, browser, claim, share_in_chat

from storage.models import Outbox

pytestmark = BOTH_DATABASES

TIMEOUT = 0.5  # [sms] timeout_seconds: the fakes hold a stalled answer longer
RETRY, LAG = 30, 600  # [sms] retry_seconds and records_lag_seconds, as they ship


def aliyun_config(fake) -> dict:
    return {
        "access_key_id": "LTAI-test", "access_key_secret": "aliyun-secret",
        "sign_name": "礼物小助手", "template_code": "SMS_123456789",
        "endpoint": fake.endpoint, "protocol": "http",
    }  # fmt: skip


def tencent_config(fake) -> dict:
    return {
        "secret_id": "AKID-test", "secret_key": "tencent-secret", "sdk_app_id": "1400000000",
        "sign_name": "礼物小助手", "template_id": "123456", "endpoint": fake.endpoint,
        "protocol": "http",
    }  # fmt: skip


VENDORS = {
    "aliyun": (lambda: FakeAliyun("LTAI-test", "aliyun-secret"), aliyun_config),
    "tencent": (lambda: FakeTencent("AKID-test", "tencent-secret"), tencent_config),
}


@pytest.fixture(params=list(VENDORS))
def vendor(request):
    make, _ = VENDORS[request.param]
    with make() as fake:
        fake.name = request.param
        fake.stall_seconds = TIMEOUT + 1
        yield fake


@pytest.fixture
def shop(bot_factory, vendor):
    """A bot whose SMS go to `vendor`, the vendor on the bot's clock; an order placed."""
    sms = {"backend": vendor.name, "timeout_seconds": TIMEOUT, "retry_seconds": RETRY}
    sms["records_lag_seconds"] = LAG
    bot = bot_factory(sms=sms | {vendor.name: VENDORS[vendor.name][1](vendor)})
    vendor.clock = bot.clock
    return bot


def order_sms(bot) -> Outbox:
    claim(bot, browser(bot, "o_friend"), share_in_chat(bot))
    bot.drain()
    return Outbox.get(Outbox.kind == "sms")


def later(bot, seconds: float) -> Outbox:
    """Move the clock on and work the outbox; the SMS row as it is then."""
    bot.clock.offset += dt.timedelta(seconds=seconds)
    bot.drain()
    return Outbox.get(Outbox.kind == "sms")


def until_due(bot, row: Outbox) -> Outbox:
    return later(bot, (row.next_attempt_at - bot.clock()).total_seconds() + 1)


# -- a send whose answer never came -----------------------------------------------------


def test_a_timeout_after_the_vendor_took_the_sms_sends_no_second_one(shop, vendor):
    vendor.stall, vendor.lag_seconds = "after", 45  # the records show it 45 s late
    row = order_sms(shop)
    assert row.status == "pending" and row.in_doubt_since is not None
    assert "NetworkError" in row.last_error and len(vendor.sent) == 1
    row = until_due(shop, row)  # 30 s on: asked, not in the records yet, not resent
    assert (row.status, row.attempts) == ("pending", 1), "asking is not an attempt"
    assert "in doubt since" in row.last_error and len(vendor.received) == 1
    row = until_due(shop, row)  # the records show it now
    assert row.status == "sent" and row.in_doubt_since is None and row.last_error == ""
    assert len(vendor.sent) == 1 and len(vendor.received) == 1, "one SMS, one send"
    assert len(vendor.queries) == 2


def test_a_timeout_before_the_vendor_took_it_is_sent_once_the_records_had_time(shop, vendor):
    vendor.stall = "before"
    row = order_sms(shop)
    assert row.status == "pending" and row.in_doubt_since is not None and vendor.sent == []
    doubtful = row.in_doubt_since
    while shop.clock() - doubtful < dt.timedelta(seconds=LAG):
        assert vendor.sent == [], "no resend while the records may still show the first"
        row = until_due(shop, row)
    assert row.status == "sent" and row.attempts == 2
    assert len(vendor.sent) == 1, "exactly one resend"
    assert len(vendor.queries) >= 2


def test_a_worker_gone_mid_send_leaves_the_next_one_asking_first(shop, vendor):
    claim(shop, browser(shop, "o_friend"), share_in_chat(shop))
    worker = shop.services.worker
    (row,) = [r for r in worker.claim() if r.kind == "sms"]
    assert worker.renew(row) and worker.sending(row)
    shop.run(worker.channels["sms"].send(row.payload, f"outbox-{row.id}"))  # then it dies
    assert len(vendor.sent) == 1
    row = later(shop, 120)  # its lease ran out; another worker takes the row
    assert row.status == "sent" and len(vendor.sent) == 1
    assert len(vendor.queries) == 1


def test_a_refused_connection_is_no_doubt_and_is_sent_again_without_asking(bot_factory, vendor):
    config = VENDORS[vendor.name][1](vendor) | {"endpoint": "127.0.0.1:1"}
    bot = bot_factory(sms={"backend": vendor.name, vendor.name: config})
    row = order_sms(bot)
    assert row.status == "pending" and row.in_doubt_since is None
    assert "Connection refused" in row.last_error or "NewConnectionError" in row.last_error
    row = until_due(bot, row)  # tried again straight away: nothing to ask
    assert (row.attempts, row.in_doubt_since) == (2, None)
    assert "NetworkError" in row.last_error and "cannot tell" not in row.last_error


def test_when_the_vendor_cannot_be_asked_the_sms_stays_in_doubt_and_unsent(shop, vendor):
    vendor.stall = "before"
    row = order_sms(shop)
    vendor.secret = vendor.secret_key = "rotated"  # every request now fails its signature
    row = until_due(shop, row)
    assert row.status == "dead" and row.in_doubt_since is not None
    assert "cannot tell whether it went" in row.last_error and vendor.sent == []


# -- limits -----------------------------------------------------------------------------


def day_limit(vendor) -> None:
    if vendor.name == "aliyun":
        vendor.answer_code = "isv.BUSINESS_LIMIT_CONTROL"
        vendor.answer_message = "触发天级流控Permits:10"
    else:
        vendor.status_code = "LimitExceeded.PhoneNumberDailyLimit"


def minute_limit(vendor) -> None:
    if vendor.name == "aliyun":
        vendor.answer_code = "isv.BUSINESS_LIMIT_CONTROL"
        vendor.answer_message = "触发分钟级流控Permits:1"
    else:
        vendor.status_code = "LimitExceeded.PhoneNumberThirtySecondLimit"


def test_a_day_level_limit_ends_the_sms_at_once_with_its_reason(shop, vendor):
    day_limit(vendor)
    row = order_sms(shop)
    assert (row.status, row.attempts) == ("dead", 1)
    assert ("天级" if vendor.name == "aliyun" else "PhoneNumberDailyLimit") in row.last_error
    assert "13800138000" not in row.last_error
    later(shop, 3600)
    assert len(vendor.received) == 1, "never tried again"


def test_a_minute_level_limit_is_retried_and_goes_through(shop, vendor):
    minute_limit(vendor)
    row = order_sms(shop)
    assert (row.status, row.attempts, row.in_doubt_since) == ("pending", 1, None)
    vendor.answer_code, vendor.status_code = "OK", "Ok"
    row = until_due(shop, row)
    assert row.status == "sent" and len(vendor.sent) == 1
    assert vendor.queries == [], "the vendor answered: nothing to ask"
