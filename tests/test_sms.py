"""SMS senders, each against a local fake of its vendor (tests/fakes/sms_vendors.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import socket
import threading
import time

import pytest
from fakes import sms_signing
from fakes.aliyun_sms import FakeAliyun
from fakes.sms_vendors import FakeWebhook, closed_port, utc_now
from fakes.tencent_sms import FakeTencent

from bot.config import Aliyun, Sms, Tencent
from bot.outgoing.sms import SmsError, SmsMessage, make_sender
from bot.outgoing.sms.tencent import tencent_params

PHONE = "+8613800138000"
BARE = "13800138000"  # must never show up in a log line or an error
MASKED = "138****8000"
PARAMS = {"order_no": "A1", "gift": "玫瑰花束", "time": "5月20日 09:00-12:00"}
MSG = SmsMessage(
    phone=PHONE,
    text="【礼物铺】您的订单 A1（玫瑰花束）将于 5月20日 09:00-12:00 送达。",
    template="order_placed",
    params=PARAMS,
    key="outbox-42",
)


def send(sms: Sms, msg: SmsMessage = MSG) -> str:
    return asyncio.run(make_sender(sms).send(msg))


def send_error(sms: Sms, msg: SmsMessage = MSG) -> SmsError:
    with pytest.raises(SmsError) as info:
        send(sms, msg)
    assert BARE not in str(info.value)
    return info.value


@pytest.fixture
def aliyun():
    with FakeAliyun(access_key_id="AK-test", secret="SK-test") as fake:
        yield fake


@pytest.fixture
def tencent():
    with FakeTencent(secret_id="SID-test", secret_key="SKEY-test") as fake:
        yield fake


@pytest.fixture
def webhook():
    with FakeWebhook() as fake:
        yield fake


def aliyun_sms(endpoint: str, secret: str = "SK-test") -> Sms:
    return Sms(
        backend="aliyun",
        aliyun=Aliyun(
            access_key_id="AK-test",
            access_key_secret=secret,
            sign_name="礼物铺",
            template_code="SMS_100",
            endpoint=endpoint,
            protocol="http",
        ),
    )


def tencent_sms(endpoint: str, secret_key: str = "SKEY-test") -> Sms:
    return Sms(
        backend="tencent",
        tencent=Tencent(
            secret_id="SID-test",
            secret_key=secret_key,
            sdk_app_id="1400000000",
            sign_name="礼物铺",
            template_id="200",
            endpoint=endpoint,
            protocol="http",
        ),
    )


# -- console ------------------------------------------------------------------


def test_console_shows_the_sms_on_stderr_with_the_phone_masked(capsys, caplog):
    caplog.set_level(logging.INFO, logger="gift_bot.sms")
    assert send(Sms(backend="console")) == "console-outbox-42"
    err = capsys.readouterr().err
    assert MASKED in err and MSG.text in err and "order_placed" in err
    assert BARE not in err
    (line,) = [r.getMessage() for r in caplog.records if r.name == "gift_bot.sms"]
    assert MASKED in line and BARE not in line


# -- webhook ------------------------------------------------------------------


def test_webhook_posts_the_message_as_json(webhook):
    assert send(Sms(backend="webhook", webhook_url=webhook.url)) == "webhook-outbox-42"
    assert webhook.received == [
        {
            "phone": PHONE,
            "text": MSG.text,
            "template": "order_placed",
            "params": PARAMS,
            "key": "outbox-42",
        }
    ]


def test_webhook_5xx_is_retried_later_and_then_goes_through(webhook):
    webhook.fail_times = 1
    sms = Sms(backend="webhook", webhook_url=webhook.url)
    error = send_error(sms)
    assert error.retryable and error.code == "HTTP500"
    assert send(sms) == "webhook-outbox-42"
    assert len(webhook.received) == 1


def test_webhook_4xx_is_final(webhook):
    webhook.reject = True
    error = send_error(Sms(backend="webhook", webhook_url=webhook.url))
    assert not error.retryable and error.code == "HTTP400"


def test_webhook_nobody_listening_is_retryable():
    url = f"http://127.0.0.1:{closed_port()}/"
    error = send_error(Sms(backend="webhook", webhook_url=url))
    assert error.retryable and error.code == "NetworkError"
    assert not error.in_doubt, "nothing left: send again freely"


def test_a_webhook_that_never_answers_may_have_sent_it():
    listener = socket.create_server(("127.0.0.1", 0))
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    try:
        error = send_error(Sms(backend="webhook", webhook_url=url, timeout_seconds=0.5))
    finally:
        listener.close()
    assert error.retryable and error.in_doubt, "the request arrived: it may have gone"


def test_the_webhook_sends_one_after_another_over_one_connection(webhook):
    sender = make_sender(Sms(backend="webhook", webhook_url=webhook.url))

    async def main() -> None:
        for i in range(5):
            await sender.send(dataclasses.replace(MSG, key=f"outbox-{i}"))
        sender.close()

    asyncio.run(main())
    assert len(webhook.received) == 5 and len(set(webhook.peers)) == 1


# -- Aliyun -------------------------------------------------------------------


def test_aliyun_sends_a_signed_request_with_our_fields(aliyun):
    assert send(aliyun_sms(aliyun.endpoint)) == "1^0"  # the BizId
    (seen,) = aliyun.received
    assert seen["PhoneNumbers"] == "8613800138000"
    assert (seen["SignName"], seen["TemplateCode"], seen["OutId"]) == (
        "礼物铺",
        "SMS_100",
        "outbox-42",
    )
    assert json.loads(seen["TemplateParam"]) == PARAMS
    assert "玫瑰花束" in seen["TemplateParam"]  # sent as UTF-8, not \\u escapes


def test_aliyun_wrong_secret_fails_the_signature_for_good(aliyun, caplog):
    error = send_error(aliyun_sms(aliyun.endpoint, secret="not-the-secret"))
    assert error.code == "SignatureDoesNotMatch" and not error.retryable
    assert aliyun.received == []
    (line,) = [r.getMessage() for r in caplog.records if r.name == "gift_bot.sms"]
    assert MASKED in line and BARE not in line


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", True),
        ("isp.SYSTEM_ERROR", True),
        ("isv.MOBILE_NUMBER_ILLEGAL", False),
        ("isv.SMS_SIGNATURE_ILLEGAL", False),
        ("isv.SMS_TEMPLATE_ILLEGAL", False),
        ("isv.INVALID_JSON_PARAM", False),
        ("isv.BLACK_KEY_CONTROL_LIMIT", False),
    ],
)
def test_aliyun_business_errors_are_classified_by_code(aliyun, code, retryable):
    aliyun.answer_code = code
    error = send_error(aliyun_sms(aliyun.endpoint))
    assert (error.code, error.retryable) == (code, retryable)


@pytest.mark.parametrize(
    ("message", "retryable"),
    [
        ("触发分钟级流控Permits:1", True),
        ("触发小时级流控Permits:5", True),
        ("触发天级流控Permits:10", False),  # the number's rolling day: it outlasts our retries
    ],
)
def test_aliyun_flow_control_is_final_only_at_the_day_level(aliyun, message, retryable):
    aliyun.answer_code, aliyun.answer_message = "isv.BUSINESS_LIMIT_CONTROL", message
    error = send_error(aliyun_sms(aliyun.endpoint))
    assert (error.code, error.retryable) == ("isv.BUSINESS_LIMIT_CONTROL", retryable)
    assert message in str(error), "the reason stays on the outbox row"


@pytest.mark.parametrize("html", [False, True])
def test_aliyun_server_errors_are_retryable(aliyun, html):
    aliyun.fail_status, aliyun.fail_html = 503, html
    error = send_error(aliyun_sms(aliyun.endpoint))
    assert error.retryable
    assert error.code == ("BadResponse" if html else "ServiceUnavailable")


def test_aliyun_nobody_listening_fails_fast_and_is_retryable():
    started = time.monotonic()
    error = send_error(aliyun_sms(f"127.0.0.1:{closed_port()}"))
    assert error.retryable and error.code == "NetworkError"
    assert time.monotonic() - started < 3  # refused at once: the SDK does not retry


# -- Tencent ------------------------------------------------------------------


def test_tencent_sends_a_signed_request_with_our_fields(tencent):
    assert send(tencent_sms(tencent.endpoint)) == "2028:1"  # the SerialNo
    (seen,) = tencent.received
    assert seen["PhoneNumberSet"] == [PHONE]
    assert seen["TemplateParamSet"] == ["A1", "玫瑰花束", "5月20日 09:00-12:00"]
    assert (seen["SmsSdkAppId"], seen["SignName"], seen["TemplateId"]) == (
        "1400000000",
        "礼物铺",
        "200",
    )
    assert seen["SessionContext"] == "outbox-42"


def test_tencent_wrong_secret_fails_the_signature_for_good(tencent):
    error = send_error(tencent_sms(tencent.endpoint, secret_key="not-the-key"))
    assert error.code == "AuthFailure.SignatureFailure" and not error.retryable
    assert tencent.received == []


def test_tencent_request_outside_the_clock_window_is_refused(tencent, monkeypatch):
    monkeypatch.setattr(sms_signing, "TC3_MAX_SKEW", -1)  # every timestamp is now stale
    error = send_error(tencent_sms(tencent.endpoint))
    assert error.code == "AuthFailure.SignatureExpire" and not error.retryable


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("LimitExceeded.PhoneNumberThirtySecondLimit", True),
        ("LimitExceeded.DeliveryFrequencyLimit", True),
        ("LimitExceeded.PhoneNumberOneHourLimit", True),
        ("LimitExceeded.PhoneNumberDailyLimit", False),
        ("LimitExceeded.PhoneNumberSameContentDailyLimit", False),
        ("LimitExceeded.AppDailyLimit", False),
        ("InvalidParameterValue.IncorrectPhoneNumber", False),
        ("FailedOperation.SignatureIncorrectOrUnapproved", False),
        ("FailedOperation.TemplateParamSetNotMatchApprovedTemplate", False),
        ("FailedOperation.PhoneNumberInBlacklist", False),
    ],
)
def test_tencent_per_number_status_is_classified_by_code(tencent, code, retryable):
    tencent.status_code = code
    error = send_error(tencent_sms(tencent.endpoint))
    assert (error.code, error.retryable) == (code, retryable)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("InternalError", True),
        ("InternalError.Timeout", True),
        ("InternalError.RestApiInterfaceNotExist", False),
        ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", False),
    ],
)
def test_tencent_request_errors_are_classified_by_code(tencent, code, retryable):
    tencent.error_code = code
    error = send_error(tencent_sms(tencent.endpoint))
    assert (error.code, error.retryable) == (code, retryable)


def test_tencent_nobody_listening_is_retryable():
    error = send_error(tencent_sms(f"127.0.0.1:{closed_port()}"))
    assert error.retryable and error.code == "ClientNetworkError"


def test_tencent_params_follow_the_documented_order_not_the_dicts():
    msg = SmsMessage(PHONE, "", "order_placed", {"time": "t", "order_no": "o", "gift": "g"}, "k")
    assert tencent_params(msg) == ["o", "g", "t"]
    with pytest.raises(SmsError) as info:
        tencent_params(SmsMessage(PHONE, "", "order_placed", {"colour": "red"}, "k"))
    assert not info.value.retryable


def test_tencent_refuses_a_message_missing_a_variable_instead_of_shifting_the_rest(tencent):
    msg = SmsMessage(PHONE, "", "order_placed", {"order_no": "A1", "time": "t"}, "outbox-42")
    error = send_error(tencent_sms(tencent.endpoint), msg)
    assert (error.code, error.retryable) == ("MissingParams", False)
    assert "gift" in str(error)
    assert tencent.received == [], "['A1', 't'] would have put the time where the gift goes"


# -- after a send whose answer never came: the vendor's records ---------------------------


def went(sms: Sms, key: str = "outbox-42", since: dt.datetime | None = None) -> bool:
    now = utc_now()
    return asyncio.run(make_sender(sms).went(PHONE, key, since or now, now))


def test_aliyun_records_are_read_by_the_number_and_the_beijing_day_and_matched_by_out_id(
    aliyun,
):
    before = utc_now() - dt.timedelta(seconds=1)
    send(aliyun_sms(aliyun.endpoint))
    assert went(aliyun_sms(aliyun.endpoint), since=before)
    assert not went(aliyun_sms(aliyun.endpoint), key="outbox-43", since=before)
    query = aliyun.queries[0]
    assert query["PhoneNumber"] == "13800138000", "a mainland number by its 11 digits"
    assert query["SendDate"] == (utc_now() + dt.timedelta(hours=8)).strftime("%Y%m%d")


def test_aliyun_records_are_read_page_by_page_and_across_beijing_midnight(aliyun):
    midnight = dt.datetime.combine(utc_now().date(), dt.time(16))  # 00:00 in Beijing
    aliyun.clock = lambda: midnight + dt.timedelta(seconds=30)
    send(aliyun_sms(aliyun.endpoint))  # ours, at 00:00:30
    for n in range(60):  # then 60 others to the same number, newer, so ours is on page 2
        send(aliyun_sms(aliyun.endpoint), dataclasses.replace(MSG, key=f"outbox-{100 + n}"))
    since = midnight - dt.timedelta(seconds=20)  # the doubtful send began the day before
    sender = make_sender(aliyun_sms(aliyun.endpoint))
    assert asyncio.run(sender.went(PHONE, "outbox-42", since, midnight + dt.timedelta(hours=1)))
    asked = [(q["SendDate"], q["CurrentPage"]) for q in aliyun.queries]
    day_before = (midnight - dt.timedelta(hours=16)).strftime("%Y%m%d")
    assert asked[0] == (day_before, "1") and asked[-1][1] == "2"


@pytest.mark.parametrize(
    ("in_reports", "ours"), [(True, "outbox-42"), (True, "outbox-43"), (False, "outbox-43")]
)
def test_tencent_reports_are_matched_by_session_context_where_the_account_has_it(
    tencent, in_reports, ours
):
    tencent.session_context_in_status = in_reports
    before = utc_now() - dt.timedelta(seconds=1)
    send(tencent_sms(tencent.endpoint), dataclasses.replace(MSG, key=ours))
    # A report without SessionContext, for this number since the doubtful send, counts.
    assert went(tencent_sms(tencent.endpoint), since=before) == (
        ours == "outbox-42" or not in_reports
    )
    (pulled,) = tencent.queries
    assert pulled["PhoneNumber"] == PHONE and pulled["Offset"] == 0


def test_tencent_reports_show_only_once_the_carrier_answered(tencent):
    tencent.lag_seconds = 60
    before = utc_now() - dt.timedelta(seconds=1)
    send(tencent_sms(tencent.endpoint))
    assert not went(tencent_sms(tencent.endpoint), since=before)


@pytest.mark.parametrize("vendor", ["aliyun", "tencent"])
@pytest.mark.parametrize("stall", ["before", "after"])
def test_a_send_timing_out_is_in_doubt_and_a_refused_one_is_not(aliyun, tencent, vendor, stall):
    fake = aliyun if vendor == "aliyun" else tencent
    fake.stall, fake.stall_seconds = stall, 1.5
    config = aliyun_sms if vendor == "aliyun" else tencent_sms
    sms = dataclasses.replace(config(fake.endpoint), timeout_seconds=0.5)
    error = send_error(sms)
    assert error.retryable and error.in_doubt
    assert len(fake.sent) == (1 if stall == "after" else 0)
    refused = send_error(dataclasses.replace(config(f"127.0.0.1:{closed_port()}")))
    assert refused.retryable and not refused.in_doubt, "nothing left: send again freely"


# -- Tencent's templates, checked at start-up --------------------------------------------


def test_a_tencent_template_with_fewer_variables_than_its_kind_is_named_and_refused(
    tencent, caplog
):
    tencent.templates["200"] = "您的订单{1}将于{2}送达。"  # approved without the gift
    sender = make_sender(tencent_sms(tencent.endpoint))
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "sms.tencent.template_id: template 200 has 2 variables" in line
    assert "order_placed fills 3: order_no, gift, time" in line
    with pytest.raises(SmsError) as info:
        asyncio.run(sender.send(MSG))
    assert (info.value.code, info.value.retryable) == ("TemplateMismatch", False)
    assert "sms.tencent.template_id" in str(info.value) and tencent.received == []


def test_a_tencent_template_not_in_the_account_is_named(tencent, caplog):
    sms = tencent_sms(tencent.endpoint)
    sms = dataclasses.replace(
        sms, tencent=dataclasses.replace(sms.tencent, templates={"login_code": "999"})
    )
    sender = make_sender(sms)
    assert sender.refused == {
        "login_code": "sms.tencent.templates.login_code: template 999 is not in this Tencent account"
    }
    assert send(sms) == "2028:1", "the order SMS, whose template matches, still goes"


def test_templates_that_cannot_be_checked_are_sent_as_configured(tencent, caplog):
    tencent.secret_key = "rotated"  # Tencent refuses every request, the check's too
    assert make_sender(tencent_sms(tencent.endpoint)).refused == {}
    assert any("templates not checked" in r.getMessage() for r in caplog.records)
