"""The order SMS through each provider, from a real order on the real server, via the outbox."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fakes.aliyun_sms import FakeAliyun
from fakes.tencent_sms import FakeTencent
from helpers import browser, claim, claim_messages, share_in_chat

from storage.models import Order, Outbox


@pytest.fixture
def aliyun():
    with FakeAliyun(access_key_id="LTAI-test", secret="aliyun-secret") as fake:
        yield fake


@pytest.fixture
def tencent():
    with FakeTencent(secret_id="AKID-test", secret_key="tencent-secret") as fake:
        yield fake


def aliyun_bot(bot_factory, fake, secret="aliyun-secret"):
    return bot_factory(
        sms={
            "backend": "aliyun",
            "aliyun": {
                "access_key_id": "LTAI-test", "access_key_secret": secret, "sign_name": "礼物小助手",
                "template_code": "SMS_123456789", "endpoint": fake.endpoint, "protocol": "http",
            },
        }
    )  # fmt: skip


def tencent_bot(bot_factory, fake):
    return bot_factory(
        sms={
            "backend": "tencent",
            "tencent": {
                "secret_id": "AKID-test", "secret_key": "tencent-secret", "sdk_app_id": "1400000000",
                "sign_name": "礼物小助手", "template_id": "123456", "endpoint": fake.endpoint,
                "protocol": "http",
            },
        }
    )  # fmt: skip


def test_aliyun_receives_a_signed_request_with_the_order_in_its_params(bot_factory, aliyun):
    bot = aliyun_bot(bot_factory, aliyun)
    claim(bot, browser(bot, "o_friend"), share_in_chat(bot))
    bot.drain()
    order = Order.get()
    (sent,) = aliyun.received
    assert sent["PhoneNumbers"] == "8613800138000" and sent["SignName"] == "礼物小助手"
    params = json.loads(sent["TemplateParam"])
    assert params["order_no"] == order.order_no and params["gift"] == "明前龙井礼盒"
    row = Outbox.get(Outbox.key == f"sms:order:{order.order_no}")
    assert sent["OutId"] == f"outbox-{row.id}", "the vendor echoes which outbox row sent it"
    assert row.status == "sent"


def test_tencent_receives_a_signed_request_with_the_order_in_its_params(bot_factory, tencent):
    bot = tencent_bot(bot_factory, tencent)
    claim(bot, browser(bot, "o_friend"), share_in_chat(bot))
    bot.drain()
    order = Order.get()
    (sent,) = tencent.received
    assert sent["PhoneNumberSet"] == ["+8613800138000"]
    assert sent["TemplateParamSet"][:2] == [order.order_no, "明前龙井礼盒"]
    assert sent["SmsSdkAppId"] == "1400000000" and sent["TemplateId"] == "123456"
    row = Outbox.get(Outbox.key == f"sms:order:{order.order_no}")
    assert sent["SessionContext"] == f"outbox-{row.id}"


def test_a_wrong_vendor_secret_marks_the_sms_dead_and_keeps_it_visible(bot_factory, aliyun):
    bot = aliyun_bot(bot_factory, aliyun, secret="wrong-secret")
    claim(bot, browser(bot, "o_friend"), share_in_chat(bot))
    bot.drain()
    row = Outbox.get(Outbox.kind == "sms")
    assert row.status == "dead" and "Signature" in row.last_error
    assert "13800138000" not in row.last_error
    assert aliyun.received == []


def test_a_failing_webhook_is_retried_with_backoff_until_it_goes_through(bot):
    bot.sms.fail_times = 2
    claim(bot, browser(bot, "o_friend"), share_in_chat(bot))
    bot.drain()
    row = Outbox.get(Outbox.kind == "sms")
    assert row.status == "pending" and row.attempts == 1 and "500" in row.last_error
    for _ in range(2):
        bot.clock.offset += row.next_attempt_at - bot.clock() + dt.timedelta(seconds=1)
        bot.drain()
        row = Outbox.get(Outbox.kind == "sms")
    assert row.status == "sent" and row.attempts == 3
    assert len(bot.sms.received) == 1


def test_the_giver_out_of_the_48h_window_leaves_the_notice_skipped_not_retried(bot):
    token = share_in_chat(bot)
    bot.fake_wechat.fail_next("/cgi-bin/message/custom/send", 45015)
    claim(bot, browser(bot, "o_friend"), token)
    bot.drain()
    notice = claim_messages().where(Outbox.kind == "wechat_text").get()
    assert notice.status == "skipped" and "45015" in notice.last_error and notice.attempts == 1
    bot.clock.offset += dt.timedelta(days=1)
    bot.drain()
    assert Outbox.get_by_id(notice.id).attempts == 1, "a skipped message is never tried again"
    assert Outbox.get(Outbox.kind == "sms").status == "sent"


def test_a_tencent_template_that_does_not_fit_its_kind_is_named_and_never_sent(
    bot_factory, tencent
):
    tencent.templates["123456"] = "您的订单{1}将于{2}送达。"  # the gift's {n} is missing
    bot = tencent_bot(bot_factory, tencent)
    claim(bot, browser(bot, "o_friend"), share_in_chat(bot))
    bot.drain()
    row = Outbox.get(Outbox.kind == "sms")
    assert row.status == "dead" and row.attempts == 1
    assert "sms.tencent.template_id: template 123456 has 2 variables" in row.last_error
    assert tencent.received == [], "not sent to be refused, nor with a variable out of place"
