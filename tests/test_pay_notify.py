"""/pay/notify trusts only WeChat Pay: a notification forged, replayed, stale, for another
amount, merchant or AppID, for an unknown order, or malformed gets a 4xx, changes nothing and
is logged; WeChat Pay's own repeats (and two servers receiving one at once) act exactly once."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import time

import pytest
import requests
from fakes.wechatpay import FakeWeChatPay, eventually, new_key
from helpers import BOTH_DATABASES, browser, xsrf
from paying import (
    balance_holds,
    open_pay_page,
    pay_overrides,
    post_notify,
    share_to_pay,
    signed_notification,
    transaction_of,
    unix,
)

from bot.money import payments
from handlers.standins.wechatpay_wire import SIGNTEST, sign
from storage import db as storage
from storage.db import write_transaction
from storage.models import Outbox, PayOrder, Share


@pytest.fixture
def unpaid(pay_bot):
    """A share waiting for its payment: the payer paid at WeChat Pay, no notification yet."""
    bot, pay = pay_bot
    token = share_to_pay(bot, quantity="2")
    number, _ = open_pay_page(bot, token)
    pay.standin.pay(number, notify_after=3600)  # its own notification is kept back
    return bot, pay, token, number


def nothing_changed(token: str) -> None:
    assert Share.get(Share.token == token).payment == "unpaid"
    assert not PayOrder.select().where(PayOrder.status == "paid").exists()
    assert not Outbox.select().where(Outbox.key.startswith("notice:paid:")).exists()


def refused(log_lines, status: int, count: int = 1) -> list[dict]:
    """The log's lines of refused notifications (the server logs once it has answered)."""

    def lines() -> list[dict]:
        return [
            line for line in log_lines()
            if line.get("path") == "/pay/notify" and line.get("status") == status
        ]  # fmt: skip

    eventually(lambda: len(lines()) >= count)
    return lines()


def test_the_real_notification_marks_the_share_paid_and_its_repeats_act_once(unpaid):
    bot, pay, token, number = unpaid
    body, headers = signed_notification(pay, transaction_of(pay, number), unix(bot))
    for _ in range(3):
        answer = post_notify(bot, body, headers)
        assert answer.status_code == 204 and answer.content == b""
    assert Share.get(Share.token == token).payment == "paid"
    assert Outbox.select().where(Outbox.key.startswith("notice:paid:")).count() == 1
    pay.standin.repeat_notification(pay.standin.notifications[0].id)
    assert [a.status for a in pay.deliver()] == [204]  # WeChat Pay's own, later: acted on once
    assert PayOrder.get(PayOrder.out_trade_no == number).status == "paid"
    balance_holds()


def test_a_forged_signature_is_refused_and_logged(unpaid, log_lines):
    bot, pay, token, number = unpaid
    plaintext = transaction_of(pay, number)
    body, headers = signed_notification(pay, plaintext, unix(bot), signer=new_key())
    assert post_notify(bot, body, headers).status_code == 401
    tampered_body = body.replace(b"encrypt-resource", b"encrypt-resourcE")
    _, good = signed_notification(pay, plaintext, unix(bot))
    assert post_notify(bot, tampered_body, good).status_code == 401
    probe = good | {"Wechatpay-Signature": SIGNTEST + base64.b64encode(b"x" * 256).decode()}
    assert post_notify(bot, body, probe).status_code == 401
    other_key = good | {"Wechatpay-Serial": "PUB_KEY_ID_0000000000000000000000000000"}
    assert post_notify(bot, body, other_key).status_code == 401
    unsigned = {"Content-Type": "application/json"}
    assert post_notify(bot, body, unsigned).status_code == 401
    nothing_changed(token)
    lines = refused(log_lines, 401, count=5)
    assert len(lines) == 5 and all(line["reason"] for line in lines), lines


def test_a_replayed_notification_outside_the_five_minute_window_is_refused(unpaid):
    """The window is less than 5 minutes, as wechatpay-go and wechatpay-java hold it: a
    timestamp 300 whole seconds away, past or future, is already outside."""
    bot, pay, token, number = unpaid
    for offset in (300, -300, 301, -301, -(10**9)):
        now = second_just_begun(bot) + offset
        body, headers = signed_notification(pay, transaction_of(pay, number), now)
        assert post_notify(bot, body, headers).status_code == 401, offset
    nothing_changed(token)
    now = second_just_begun(bot) - 299
    body, headers = signed_notification(pay, transaction_of(pay, number), now)
    assert post_notify(bot, body, headers).status_code == 204


def second_just_begun(bot) -> int:
    """Move the bot's clock to just after a whole second and return it: a notification sent
    now arrives within that second (WeChat Pay's timestamps are whole seconds)."""
    bot.clock.offset += dt.timedelta(seconds=1.02 - unix(bot) % 1)
    return int(unix(bot))


def test_a_signature_of_another_type_or_none_is_refused(unpaid, log_lines):
    bot, pay, token, number = unpaid
    body, headers = signed_notification(pay, transaction_of(pay, number), unix(bot))
    sm2 = headers | {"Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}
    untyped = {k: v for k, v in headers.items() if k != "Wechatpay-Signature-Type"}

    assert post_notify(bot, body, sm2).status_code == 401
    assert post_notify(bot, body, untyped).status_code == 401

    nothing_changed(token)
    lines = refused(log_lines, 401, count=2)
    assert all("Signature-Type" in line["reason"] for line in lines), lines
    assert post_notify(bot, body, headers).status_code == 204


def test_an_answer_of_another_signature_type_is_not_believed(pay_bot):
    bot, pay = pay_bot
    token = share_to_pay(bot)
    pay.standin.sign_next("answer", signature_type="WECHATPAY2-SM2-WITH-SM3")
    session = browser(bot, "o_giver")
    page = session.get(f"{bot.url}/pay/{token}", timeout=10)

    answer = session.post(f"{bot.url}/pay/{token}/order", data={"_xsrf": xsrf(page)}, timeout=10)

    assert answer.status_code == 502  # WeChat Pay's answer could not be believed
    assert PayOrder.get().prepay_id == ""
    assert open_pay_page(bot, token)[1]["package"].startswith("prepay_id=")


def test_a_timestamp_of_5000_digits_is_a_401_not_a_crash(unpaid):
    bot, pay, token, number = unpaid
    body, headers = signed_notification(pay, transaction_of(pay, number), unix(bot))

    answer = post_notify(bot, body, headers | {"Wechatpay-Timestamp": "1" * 5000})

    assert answer.status_code == 401 and answer.json() == {"code": "FAIL", "message": "失败"}
    nothing_changed(token)


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": {"total": 1, "payer_total": 1, "currency": "CNY"}},
        {"amount": {"total": "33600"}},
        {"mchid": "1900000999"},
        {"appid": "wx0other0app0id000"},
        {"trade_state": "NOTPAY"},
        {"out_trade_no": "T000000000000UNKNOWN"},
    ],
    ids=[
        "wrong-amount",
        "amount-as-text",
        "other-merchant",
        "other-appid",
        "not-paid",
        "unknown-order",
    ],
)
def test_a_notification_that_does_not_match_our_order_changes_nothing(
    unpaid, pay_keys, log_lines, changes
):
    bot, pay, token, number = unpaid
    plaintext = transaction_of(pay, number, **changes)
    body, headers = signed_notification(pay, plaintext, unix(bot))
    assert post_notify(bot, body, headers).status_code == 400
    nothing_changed(token)
    assert refused(log_lines, 400)


def test_a_malformed_notification_is_a_400(unpaid):
    bot, pay, token, number = unpaid
    plaintext = transaction_of(pay, number)
    wrong_key = "0" * 32
    body, headers = signed_notification(pay, plaintext, unix(bot), api_v3_key=wrong_key)
    assert post_notify(bot, body, headers).status_code == 400
    key, serial = pay.standin.notification_signer
    for raw in (b"not json", b"{}", b'{"resource": 1}', json.dumps({"resource": {}}).encode()):
        now = str(int(unix(bot)))
        message = f"{now}\nn0nce\n".encode() + raw + b"\n"
        headers = {
            "Wechatpay-Timestamp": now, "Wechatpay-Nonce": "n0nce",
            "Wechatpay-Signature": sign(key, message), "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Content-Type": "application/json",
        }  # fmt: skip
        assert post_notify(bot, raw, headers).status_code == 400, raw
    nothing_changed(token)


@BOTH_DATABASES
def test_the_same_notification_received_at_once_by_several_workers_acts_once(unpaid):
    """Eight deliveries at once: the server's database threads (PostgreSQL: each its own
    connection and transaction, as separate workers are) race to settle the one order."""
    bot, pay, token, number = unpaid
    body, headers = signed_notification(pay, transaction_of(pay, number), unix(bot))
    start = threading.Barrier(8)
    answers = []

    def deliver() -> None:
        start.wait()
        answers.append(post_notify(bot, body, headers).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [204] * 8
    assert Share.get(Share.token == token).payment == "paid"
    assert Outbox.select().where(Outbox.key.startswith("notice:paid:")).count() == 1
    balance_holds()


@BOTH_DATABASES
def test_two_workers_settling_one_payment_in_their_own_transactions_act_once(unpaid):
    """The domain call itself, from threads with their own connections and transactions."""
    bot, pay, token, number = unpaid
    start = threading.Barrier(4)
    outcomes = []

    def settle() -> None:
        start.wait()
        with write_transaction():
            outcomes.append(
                payments.settle_paid(
                    bot.services.notices, bot.config, number, "4200000001", bot.clock()
                )
            )
        storage.db.close()

    threads = [threading.Thread(target=settle) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["paid", "repeat", "repeat", "repeat"]
    assert Outbox.select().where(Outbox.key.startswith("notice:paid:")).count() == 1
    balance_holds()


@BOTH_DATABASES
def test_two_server_processes_receiving_the_same_notification_at_once_act_once(
    cluster, pay_keys, tmp_path
):
    """Real `serve` processes on one database, both in wechatpay mode: WeChat Pay's
    notification and its repeats reach both at once; the share is paid once, one card."""
    with FakeWeChatPay(pay_keys, retry_scale=1e-4, answer_timeout=2) as pay:
        overrides = pay_overrides(tmp_path, pay_keys, pay)
        one = cluster.start("one", **overrides)
        two = cluster.start("two", **overrides)
        for text in ("1", "送", "2", "跳过"):
            one.wx.text("o_giver", text)
        token = re.search(r"/pay/(\S+)", one.wx.text("o_giver", "确认")["Content"]).group(1)
        cluster.wechat.set_user("o_giver")
        session = requests.Session()
        page = session.get(f"{two.url}/pay/{token}", timeout=10)
        answer = session.post(
            f"{two.url}/pay/{token}/order", data={"_xsrf": xsrf(page)}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        (number,) = pay.standin.orders
        pay.standin.pay(number, notify_after=3600)
        plaintext = transaction_of(pay, number)
        body, headers = signed_notification(pay, plaintext, time.time())
        start = threading.Barrier(8)
        answers = []

        def deliver(server) -> None:
            start.wait()
            url = f"{server.url}/pay/notify"
            answers.append(requests.post(url, data=body, headers=headers, timeout=10).status_code)

        threads = [threading.Thread(target=deliver, args=(s,)) for s in [one, two] * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert answers == [204] * 8
        assert Share.get(Share.token == token).payment == "paid"
        assert PayOrder.get().status == "paid"
        assert eventually(lambda: len(cluster.wechat.messages) == 1, timeout=10)
        assert Outbox.select().where(Outbox.key.startswith("notice:paid:")).count() == 1
        balance_holds()
