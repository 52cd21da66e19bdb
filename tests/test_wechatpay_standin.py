"""The WeChat Pay stand-in, driven by the official-protocol SDK (wechatpayv3) and by hand, as a
merchant of WeChat Pay's public key (its platform certificates: test_wechatpay_certificates.py).

The SDK verifies every 2xx answer with the stand-in's public key (core.py,
`_verify_signature`), so each success below also shows the answers are signed as
WeChat Pay signs them. The hand-made requests and checks follow the docs'
strings to sign and decryption, so the stand-in is held to the docs, not to one SDK.
"""

from __future__ import annotations

import base64
import binascii
import json
import time

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fakes.wechatpay import (
    API_V3_KEY,
    APPID,
    MCHID,
    FakeWeChatPay,
    MerchantKeys,
    NotifyReceiver,
    eventually,
    new_key,
    private_pem,
)
from paysdk import ORDER_NO, MovableClock, order, quick_stand_in, sdk, signed_by_hand
from urllib3.util import SKIP_HEADER
from wechatpayv3 import WeChatPay

from handlers.standins.wechatpay_notify import RETRY_SCHEDULE


@pytest.fixture(scope="module")
def keys() -> MerchantKeys:
    return MerchantKeys.generate()  # RSA key generation is slow: once per module


@pytest.fixture(scope="module")
def stranger_key():
    return new_key()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def fake(keys, clock):
    with quick_stand_in(keys, clock, "public_key") as running:
        yield running


@pytest.fixture
def shop():
    with NotifyReceiver() as receiver:
        yield receiver


@pytest.fixture
def wxpay(fake, keys, shop) -> WeChatPay:
    return sdk(fake, keys, shop.notify_url)


def paid_order(wxpay: WeChatPay, fake: FakeWeChatPay, no: str = ORDER_NO, total: int = 100) -> None:
    assert order(wxpay, no, total)[0] == 200
    fake.standin.pay(no)


def refund(wxpay: WeChatPay, no: str, amount: int, total: int = 100, **extra) -> tuple[int, str]:
    money = {"refund": amount, "total": total, "currency": "CNY"}
    return wxpay.refund(out_refund_no=no, amount=money, out_trade_no=ORDER_NO, **extra)


def refused(answer: tuple[int, str]) -> tuple[int, str]:
    status, text = answer
    return status, json.loads(text)["code"]


def check_signed_by_hand(public_pem: bytes, headers, body: bytes) -> bool:
    """The docs' check of an answer or a notification: `TS\\nNONCE\\nBODY\\n` against the key."""
    public_key = serialization.load_pem_public_key(public_pem)
    message = (
        f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + body + b"\n"
    )
    try:
        signature = base64.b64decode(headers["Wechatpay-Signature"], validate=True)
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (KeyError, binascii.Error, InvalidSignature):  # no signature, not base64, or wrong
        return False
    return True


def decrypt_by_hand(resource: dict) -> dict:
    """The docs' decryption: AES-256-GCM, key = the APIv3 key's bytes, the 12-character nonce."""
    plain = AESGCM(API_V3_KEY.encode()).decrypt(
        resource["nonce"].encode(),
        base64.b64decode(resource["ciphertext"]),
        resource["associated_data"].encode(),
    )
    return json.loads(plain)


# -- ordering, paying, querying ------------------------------------------------------------


def test_jsapi_order_answers_a_prepay_id_the_sdk_accepts_as_signed(wxpay, fake):
    status, text = order(wxpay)

    assert status == 200
    assert json.loads(text)["prepay_id"].startswith("wx")
    assert fake.standin.orders[ORDER_NO].trade_state == "NOTPAY"


def test_unpaid_order_queries_as_notpay_without_payer_or_transaction_id(wxpay):
    order(wxpay, attach="share:7")

    status, text = wxpay.query(out_trade_no=ORDER_NO)

    assert status == 200
    answer = json.loads(text)
    assert answer["trade_state"] == "NOTPAY" and answer["trade_state_desc"] == "订单未支付"
    assert (answer["appid"], answer["mchid"], answer["attach"]) == (APPID, MCHID, "share:7")
    assert answer["amount"]["total"] == 100
    assert "payer" not in answer and "transaction_id" not in answer


def test_paying_sends_a_notification_the_sdk_and_the_docs_both_accept(wxpay, fake, shop):
    order(wxpay)

    fake.standin.pay(ORDER_NO)
    [attempt] = fake.deliver()

    assert attempt.status == 204
    [received] = shop.received
    headers, body = received["headers"], received["body"]
    assert headers["Wechatpay-Serial"] == fake.standin.public_key_id
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert abs(int(headers["Wechatpay-Timestamp"]) - time.time()) < 60
    assert check_signed_by_hand(fake.standin.platform_public_key_pem, headers, body)
    envelope = json.loads(body)
    assert (
        envelope["event_type"] == "TRANSACTION.SUCCESS"
        and envelope["resource_type"] == "encrypt-resource"
    )
    assert envelope["create_time"].endswith("+08:00")
    resource = envelope["resource"]
    assert (resource["original_type"], resource["algorithm"]) == ("transaction", "AEAD_AES_256_GCM")
    assert len(resource["nonce"]) == 12
    plain = decrypt_by_hand(resource)
    assert plain["out_trade_no"] == ORDER_NO and plain["trade_state"] == "SUCCESS"
    assert (plain["appid"], plain["mchid"], plain["trade_type"]) == (APPID, MCHID, "JSAPI")
    assert plain["payer"]["openid"] == "o_giver"
    assert plain["amount"] == {
        "currency": "CNY",
        "payer_currency": "CNY",
        "payer_total": 100,
        "total": 100,
    }
    assert plain["transaction_id"].startswith("4200") and len(plain["transaction_id"]) == 28
    assert plain["success_time"].endswith("+08:00")
    assert wxpay.callback(headers, body)["resource"] == plain
    assert fake.standin.notifications[0].state == "delivered"


def test_paid_order_queries_as_success_with_payer_and_amount(wxpay, fake):
    paid_order(wxpay, fake)

    status, text = wxpay.query(out_trade_no=ORDER_NO)

    answer = json.loads(text)
    assert status == 200 and answer["trade_state"] == "SUCCESS"
    assert answer["transaction_id"] == fake.standin.orders[ORDER_NO].transaction_id
    assert answer["payer"] == {"openid": "o_giver"} and answer["amount"]["payer_total"] == 100
    by_id = wxpay.query(transaction_id=answer["transaction_id"])
    assert by_id[0] == 200 and json.loads(by_id[1]) == answer


def test_the_same_order_again_gets_a_fresh_prepay_id(wxpay, fake):
    first, again = order(wxpay), order(wxpay)

    assert first[0] == again[0] == 200
    assert json.loads(first[1])["prepay_id"] != json.loads(again[1])["prepay_id"]
    assert len(fake.standin.orders) == 1


def test_the_same_out_trade_no_with_another_amount_is_refused(wxpay):
    order(wxpay, total=100)

    assert refused(order(wxpay, total=1)) == (400, "INVALID_REQUEST")


def test_only_the_payer_named_in_the_order_can_pay(wxpay, fake):
    order(wxpay)

    with pytest.raises(ValueError, match="下单账号与支付账号不一致"):
        fake.standin.pay(ORDER_NO, openid="o_someone_else")


def test_an_order_past_its_time_expire_cannot_be_paid(wxpay, fake, clock):
    soon = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600 + 120))
    order(wxpay, time_expire=soon)
    clock.offset += 121

    with pytest.raises(ValueError, match="could be paid until"):
        fake.standin.pay(ORDER_NO)


def test_a_paid_order_cannot_be_ordered_again(wxpay, fake):
    paid_order(wxpay, fake)

    assert refused(order(wxpay)) == (400, "ORDERPAID")


# -- closing --------------------------------------------------------------------------------


def test_closing_an_unpaid_order_ends_it_and_its_number(wxpay, fake):
    order(wxpay)

    assert wxpay.close(ORDER_NO)[0] == 204
    assert wxpay.close(ORDER_NO)[0] == 204  # re-entrant

    assert json.loads(wxpay.query(out_trade_no=ORDER_NO)[1])["trade_state"] == "CLOSED"
    assert refused(order(wxpay)) == (400, "ORDER_CLOSED")
    with pytest.raises(ValueError):
        fake.standin.pay(ORDER_NO)


def test_closing_a_paid_order_is_refused(wxpay, fake):
    paid_order(wxpay, fake)

    assert refused(wxpay.close(ORDER_NO)) == (400, "ORDER_PAID")


def test_closing_a_number_never_ordered_answers_204_and_spends_it(wxpay):
    assert wxpay.close("T202612019999")[0] == 204

    assert refused(wxpay.query(out_trade_no="T202612019999")) == (404, "ORDER_NOT_EXIST")
    assert refused(order(wxpay, "T202612019999")) == (400, "INVALID_REQUEST")


# -- refunds --------------------------------------------------------------------------------


def test_a_refund_is_accepted_processing_then_settled_with_its_notification(wxpay, fake, shop):
    paid_order(wxpay, fake)
    fake.deliver()

    status, text = refund(wxpay, "R202612010001", 100, notify_url=shop.notify_url)

    accepted = json.loads(text)
    assert status == 200 and accepted["status"] == "PROCESSING"
    assert accepted["out_trade_no"] == ORDER_NO and accepted["refund_id"].startswith("50")
    assert accepted["transaction_id"] == fake.standin.orders[ORDER_NO].transaction_id
    assert (accepted["amount"]["refund"], accepted["amount"]["total"]) == (100, 100)
    assert (
        "create_time" in accepted and "user_received_account" in accepted and "channel" in accepted
    )
    assert json.loads(wxpay.query(out_trade_no=ORDER_NO)[1])["trade_state"] == "REFUND"

    fake.standin.settle_refund("R202612010001", "SUCCESS")
    fake.deliver()

    received = shop.received[-1]
    envelope = json.loads(received["body"])
    assert (
        envelope["event_type"] == "REFUND.SUCCESS"
        and envelope["resource"]["original_type"] == "refund"
    )
    assert check_signed_by_hand(
        fake.standin.platform_public_key_pem, received["headers"], received["body"]
    )
    notice = decrypt_by_hand(envelope["resource"])
    assert notice["refund_status"] == "SUCCESS" and notice["out_refund_no"] == "R202612010001"
    assert notice["amount"] == {
        "total": 100,
        "refund": 100,
        "payer_total": 100,
        "payer_refund": 100,
    }
    assert wxpay.callback(received["headers"], received["body"])["resource"] == notice
    settled = json.loads(wxpay.query_refund("R202612010001")[1])
    assert settled["status"] == "SUCCESS" and "success_time" in settled


@pytest.mark.parametrize("outcome", ["CLOSED", "ABNORMAL"])
def test_a_refund_that_fails_notifies_its_outcome(wxpay, fake, shop, outcome):
    paid_order(wxpay, fake)
    refund(wxpay, "R202612010001", 40, notify_url=shop.notify_url)

    fake.standin.settle_refund("R202612010001", outcome)
    fake.deliver(due_only=False)

    envelope = json.loads(shop.received[-1]["body"])
    assert envelope["event_type"] == f"REFUND.{outcome}"
    notice = decrypt_by_hand(envelope["resource"])
    assert notice["refund_status"] == outcome and "success_time" not in notice


def test_the_same_out_refund_no_refunds_once(wxpay, fake):
    paid_order(wxpay, fake)

    first, again = refund(wxpay, "R202612010001", 30), refund(wxpay, "R202612010001", 30)

    assert first[0] == again[0] == 200
    assert json.loads(first[1])["refund_id"] == json.loads(again[1])["refund_id"]
    assert len(fake.standin.refunds) == 1
    assert refused(refund(wxpay, "R202612010001", 31)) == (400, "INVALID_REQUEST")


def test_a_refund_of_an_unpaid_order_is_refused(wxpay):
    order(wxpay)

    assert refused(refund(wxpay, "R202612010001", 100)) == (404, "RESOURCE_NOT_EXISTS")


def test_a_refund_with_a_wrong_total_is_refused(wxpay, fake):
    paid_order(wxpay, fake)

    assert refused(refund(wxpay, "R202612010001", 10, total=99)) == (400, "INVALID_REQUEST")


def test_refunds_beyond_the_payment_are_refused_and_must_be_a_minute_apart(wxpay, fake, clock):
    paid_order(wxpay, fake)
    assert refund(wxpay, "R1", 60)[0] == 200

    assert refused(refund(wxpay, "R2", 40)) == (
        429,
        "FREQUENCY_LIMITED",
    )  # same order within a minute
    clock.offset += 61
    assert refund(wxpay, "R2", 40)[0] == 200
    clock.offset += 61
    assert refused(refund(wxpay, "R3", 1)) == (400, "INVALID_REQUEST")  # 100 of 100 refunded


def test_an_order_takes_at_most_fifty_refunds(wxpay, fake, keys, clock):
    paid_order(wxpay, fake)

    def refund_one_fen(no: str) -> requests.Response:
        clock.offset += 61  # refunds of one order come a minute apart, signed at that time
        body = json.dumps(
            {
                "out_trade_no": ORDER_NO,
                "out_refund_no": no,
                "amount": {"refund": 1, "total": 100, "currency": "CNY"},
            }
        )
        return signed_by_hand(
            fake,
            keys.merchant,
            "POST",
            "/v3/refund/domestic/refunds",
            body.encode(),
            timestamp=str(int(clock())),
        )

    assert all(refund_one_fen(f"R{n:02}").status_code == 200 for n in range(50))
    fifty_first = refund_one_fen("R50")
    assert (fifty_first.status_code, fifty_first.json()["code"]) == (400, "INVALID_REQUEST")


def test_a_closed_refund_gives_its_amount_back_to_refund(wxpay, fake, clock):
    paid_order(wxpay, fake)
    refund(wxpay, "R1", 100)
    fake.standin.settle_refund("R1", "CLOSED")
    clock.offset += 61

    assert refund(wxpay, "R2", 100)[0] == 200


def test_unknown_order_and_refund_are_not_found(wxpay):
    assert refused(wxpay.query(out_trade_no="T202612010404")) == (404, "ORDER_NOT_EXIST")
    assert refused(wxpay.query_refund("R202612010404")) == (404, "RESOURCE_NOT_EXISTS")


# -- failures WeChat Pay has, on demand ---------------------------------------------------


def test_an_injected_system_error_changes_nothing_and_the_retry_succeeds(wxpay, fake):
    paid_order(wxpay, fake)
    fake.standin.fail_next("refund", status=500, code="SYSTEM_ERROR")

    assert refused(refund(wxpay, "R202612010001", 100)) == (500, "SYSTEM_ERROR")
    assert fake.standin.refunds == {}
    assert refund(wxpay, "R202612010001", 100)[0] == 200


@pytest.mark.parametrize(("code", "status"), [("NOT_ENOUGH", 403), ("FREQUENCY_LIMITED", 429)])
def test_an_injected_code_comes_with_its_documented_status(wxpay, fake, code, status):
    paid_order(wxpay, fake)
    fake.standin.fail_next("refund", code=code)

    assert refused(refund(wxpay, "R202612010001", 100)) == (status, code)


def test_a_stalled_refund_times_out_yet_was_made_and_its_retry_returns_it(wxpay, fake):
    paid_order(wxpay, fake)
    fake.standin.stall_next("refund", seconds=1.5)
    impatient = wxpay._core._timeout
    wxpay._core._timeout = (1, 0.5)

    with pytest.raises(requests.Timeout):
        refund(wxpay, "R202612010001", 100)

    wxpay._core._timeout = impatient
    assert json.loads(wxpay.query_refund("R202612010001")[1])["status"] == "PROCESSING"
    again = refund(wxpay, "R202612010001", 100)
    assert again[0] == 200 and len(fake.standin.refunds) == 1


# -- what every request must be --------------------------------------------------------------


def test_a_request_signed_by_hand_from_the_docs_is_accepted_and_its_answer_checks(fake, keys, shop):
    # raw UTF-8 (no \u escapes), keys in another order than any SDK writes them
    body = json.dumps(
        {
            "payer": {"openid": "o_giver"},
            "amount": {"total": 1},
            "notify_url": shop.notify_url,
            "out_trade_no": ORDER_NO,
            "description": "送你一束花",
            "mchid": MCHID,
            "appid": APPID,
        },
        ensure_ascii=False,
    ).encode()

    answer = signed_by_hand(fake, keys.merchant, "POST", "/v3/pay/transactions/jsapi", body)

    assert answer.status_code == 200, answer.text
    assert answer.headers["Wechatpay-Serial"] == fake.standin.public_key_id
    assert answer.headers["Request-ID"]
    assert check_signed_by_hand(
        fake.standin.platform_public_key_pem, answer.headers, answer.content
    )
    query = signed_by_hand(
        fake, keys.merchant, "GET", f"/v3/pay/transactions/out-trade-no/{ORDER_NO}?mchid={MCHID}"
    )
    assert query.status_code == 200 and query.json()["trade_state"] == "NOTPAY"


def test_a_request_whose_body_is_not_what_was_signed_is_refused(fake, keys):
    signed = b'{"mchid":"1900000109"}'

    answer = signed_by_hand(
        fake,
        keys.merchant,
        "POST",
        f"/v3/pay/transactions/out-trade-no/{ORDER_NO}/close",
        signed,
        send=b'{"mchid":"1900000108"}',
    )

    assert (answer.status_code, answer.json()["code"]) == (401, "SIGN_ERROR")
    assert answer.json()["detail"]["sign_information"]["method"] == "POST"
    assert "Wechatpay-Signature" not in answer.headers


def test_a_request_signed_with_another_key_is_refused(fake, keys, shop, stranger_key):
    forger = sdk(fake, keys, shop.notify_url, private_key=private_pem(stranger_key))

    assert refused(order(forger)) == (401, "SIGN_ERROR")
    assert fake.standin.orders == {}


def test_a_stale_timestamp_is_refused(wxpay, fake, clock):
    clock.offset = 301  # the request was signed more than five minutes ago

    status, text = order(wxpay)

    assert (status, json.loads(text)["code"]) == (401, "SIGN_ERROR")
    assert "5分钟" in json.loads(text)["message"]


# how to make requests (and urllib3 beneath it) leave out a header it would add itself
@pytest.mark.parametrize("left_out", [{"User-Agent": SKIP_HEADER}, {"Accept": None}])
def test_a_request_without_user_agent_or_accept_is_refused(fake, keys, left_out):
    answer = signed_by_hand(
        fake, keys.merchant, "GET", "/v3/refund/domestic/refunds/R1", headers=left_out
    )

    assert (answer.status_code, answer.json()) == (
        400,
        {"code": "INVALID_REQUEST", "message": "Http头缺少Accept或User-Agent"},
    )


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer abc",
        'WECHATPAY2-SHA256-RSA2048 mchid="1900000109"',  # four parameters missing
        'WECHATPAY2-SHA256-RSA2048 mchid="1", nonce_str="n",timestamp="1",serial_no="s",signature="x"',
        'WECHATPAY2-SM2-WITH-SM3 mchid="1",nonce_str="n",timestamp="1",serial_no="s",signature="x"',
    ],
)
def test_a_malformed_authorization_is_refused(fake, keys, authorization):
    answer = signed_by_hand(
        fake,
        keys.merchant,
        "GET",
        "/v3/refund/domestic/refunds/R1",
        headers={"Authorization": authorization},
    )

    assert (answer.status_code, answer.json()["code"]) == (401, "SIGN_ERROR")


def test_a_wrong_mchid_is_refused(fake, keys, shop, wxpay):
    stranger = sdk(fake, keys, shop.notify_url, mchid="1900000999")
    assert refused(order(stranger)) == (401, "SIGN_ERROR")  # no such merchant certificate

    assert refused(order(wxpay, mchid="1900000999")) == (400, "INVALID_REQUEST")  # body != header
    assert refused(wxpay.query(out_trade_no=ORDER_NO, mchid="1900000999")) == (
        400,
        "INVALID_REQUEST",
    )


def test_a_wrong_certificate_serial_is_refused(fake, keys, shop):
    client = sdk(
        fake, keys, shop.notify_url, cert_serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"
    )

    assert refused(order(client)) == (401, "SIGN_ERROR")


def test_a_query_without_mchid_is_refused(fake, keys):
    answer = signed_by_hand(
        fake, keys.merchant, "GET", f"/v3/pay/transactions/out-trade-no/{ORDER_NO}"
    )

    assert (answer.status_code, answer.json()["code"]) == (400, "PARAM_ERROR")


def test_unknown_paths_404_and_wrong_methods_405_without_a_body(fake, keys):
    assert (
        signed_by_hand(fake, keys.merchant, "GET", "/v3/pay/transactions/jsapi").status_code == 405
    )
    missing = signed_by_hand(fake, keys.merchant, "GET", "/v3/no/such/api")
    assert (missing.status_code, missing.content) == (404, b"")


def test_certificates_are_not_offered_in_public_key_mode(fake, keys):
    answer = signed_by_hand(fake, keys.merchant, "GET", "/v3/certificates")

    assert (answer.status_code, answer.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")


# -- what the order must say ----------------------------------------------------------------


def test_a_wrong_appid_is_refused(wxpay):
    assert refused(order(wxpay, appid="wx0other0app0id000")) == (400, "APPID_MCHID_NOT_MATCH")


@pytest.mark.parametrize(
    "change",
    [
        {"no": "T1234"},  # out_trade_no shorter than 6
        {"no": "T" * 33},  # longer than 32
        {"no": "T2026 1201"},  # a character outside 0-9A-Za-z_-|*
        {"total": 0},  # amount must be > 0 fen
        {"notify_url": "http://shop.example.com/pay/notify"},  # a public host over plain http
        {"notify_url": "https://shop.example.com/pay/notify?share=7"},  # a query string
        {"notify_url": "https://192.168.1.10/pay/notify"},  # an intranet address
        {"description": "生日快乐🎂"},  # an emoji: 4 bytes of UTF-8 (the SDK sends \ud83c\udf82)
        {"description": "礼" * 128},  # more than 127 characters
        {"payer": {"openid": ""}},  # JSAPI needs the payer's openid
        {"time_expire": "2026-12-01 20:00:00"},  # not RFC 3339
    ],
)
def test_an_order_breaking_a_documented_rule_is_refused(wxpay, fake, change):
    options = dict(change)
    no, total = options.pop("no", ORDER_NO), options.pop("total", 100)
    description = options.pop("description", "礼物卡")
    answer = wxpay.pay(
        description=description,
        out_trade_no=no,
        amount={"total": total},
        **({"payer": {"openid": "o_giver"}} | options),
    )

    assert refused(answer) == (400, "PARAM_ERROR")
    assert fake.standin.orders == {}


@pytest.mark.parametrize(
    "body",
    [
        '{"appid":"wx0fake0app0id0000","mchid":"1900000109","description":"花🌹","out_trade_no":"T202612010001",'
        '"notify_url":"http://127.0.0.1:9/n","amount":{"total":1},"payer":{"openid":"o_giver"}}',
        '{"appid":"wx0fake0app0id0000","mchid":"1900000109","description":"花","out_trade_no":"T202612010001",'
        '"notify_url":"http://127.0.0.1:9/n","amount":{"total":1},"payer":{"openid":"o_giver"},"total_fee":1}',
        '{"appid":"wx0fake0app0id0000","mchid":"1900000109","description":"花","out_trade_no":"T202612010001",'
        '"notify_url":"http://127.0.0.1:9/n","amount":{"total":1,"currency":"USD"},"payer":{"openid":"o_giver"}}',
        '{"appid":null}',
        "not json",
    ],
    ids=["raw-utf8-emoji", "extra-parameter", "not-cny", "null", "not-json"],
)
def test_a_hand_made_order_breaking_a_rule_is_refused(fake, keys, body):
    answer = signed_by_hand(
        fake, keys.merchant, "POST", "/v3/pay/transactions/jsapi", body.encode()
    )

    assert (answer.status_code, answer.json()["code"]) == (400, "PARAM_ERROR")


# -- notifications ---------------------------------------------------------------------------


def test_a_notification_is_retried_until_answered_and_signed_afresh_each_time(wxpay, fake, shop):
    order(wxpay)
    shop.answers = [500, 503]
    fake.standin.pay(ORDER_NO)

    fake.start_sender()

    note = fake.standin.notifications[0]
    assert eventually(lambda: note.state == "delivered")
    assert [a.status for a in note.attempts] == [500, 503, 204]
    received = shop.received
    assert len({json.loads(r["body"])["id"] for r in received}) == 1
    assert len({r["headers"]["Wechatpay-Nonce"] for r in received}) == 3
    assert all(
        check_signed_by_hand(fake.standin.platform_public_key_pem, r["headers"], r["body"])
        for r in received
    )


def test_no_answer_within_the_window_is_a_failure_that_is_retried(wxpay, fake, shop):
    order(wxpay)
    shop.answers = [1.0]  # the shop answers after a second; the stand-in waits 0.5 s
    fake.standin.pay(ORDER_NO)

    [late] = fake.deliver()
    [answered] = fake.deliver()

    assert late.status is None and answered.status == 204


def test_the_retry_schedule_is_the_documented_one_and_it_gives_up_after_it(wxpay, fake, shop):
    assert len(RETRY_SCHEDULE) == 15 and sum(RETRY_SCHEDULE) == 24 * 3600 + 4 * 60
    order(wxpay)
    shop.default = 500
    fake.standin.pay(ORDER_NO)

    fake.start_sender()

    note = fake.standin.notifications[0]
    assert eventually(lambda: note.state == "gave_up")
    assert len(note.attempts) == len(shop.received) == 1 + len(RETRY_SCHEDULE)


def test_notifications_can_come_out_of_order_and_again(wxpay, fake, shop):
    order(wxpay, "T202612010001")
    order(wxpay, "T202612010002")
    first = fake.standin.pay("T202612010001")
    fake.standin.pay("T202612010002")

    fake.deliver(reverse=True)
    fake.standin.repeat_notification(first.id)
    fake.deliver()

    numbers = [
        decrypt_by_hand(json.loads(r["body"])["resource"])["out_trade_no"] for r in shop.received
    ]
    assert numbers == ["T202612010002", "T202612010001", "T202612010001"]
    assert json.loads(shop.received[1]["body"])["id"] == json.loads(shop.received[2]["body"])["id"]


def test_a_signtest_notification_fails_the_check_and_comes_again_signed(wxpay, fake, shop):
    order(wxpay)
    fake.standin.signtest_next("notification")
    shop.answers = [401]  # what a shop answers a signature it cannot verify
    fake.standin.pay(ORDER_NO)

    fake.deliver()
    fake.deliver()

    probe, real = shop.received
    assert probe["headers"]["Wechatpay-Signature"].startswith("WECHATPAY/SIGNTEST/")
    assert wxpay.callback(probe["headers"], probe["body"]) is None
    assert wxpay.callback(real["headers"], real["body"])["resource"]["trade_state"] == "SUCCESS"


def test_a_signtest_answer_fails_the_sdk_check(wxpay, fake):
    fake.standin.signtest_next("answer")

    with pytest.raises(Exception, match="failed to verify the signature"):
        order(wxpay)


def test_a_late_notification_waits_for_its_time_with_the_sender_running(wxpay, fake, shop):
    order(wxpay)
    fake.start_sender()

    fake.standin.pay(ORDER_NO, notify_after=0.5)

    time.sleep(0.2)
    assert shop.received == []  # paid, queryable as SUCCESS, not yet told
    assert json.loads(wxpay.query(out_trade_no=ORDER_NO)[1])["trade_state"] == "SUCCESS"
    assert eventually(lambda: len(shop.received) == 1)


def test_a_notification_to_a_public_host_is_never_sent_from_here(wxpay, fake):
    order(wxpay, notify_url="https://shop.example.com/pay/notify")
    fake.standin.pay(ORDER_NO)

    [attempt] = fake.deliver()

    assert attempt.status is None and "not sent" in attempt.error


# -- the stand-in as the sandbox uses it -----------------------------------------------------


def test_under_a_prefix_the_sdk_signs_the_api_path_and_is_answered(keys, shop):
    with FakeWeChatPay(keys, prefix="/dev/wechatpay", verification="public_key") as mounted:
        client = sdk(mounted, keys, shop.notify_url)

        assert order(client)[0] == 200
        assert mounted.standin.requests[0].path == "/v3/pay/transactions/jsapi"


def test_every_request_is_logged_with_its_answer(wxpay, fake):
    order(wxpay)
    wxpay.query(out_trade_no="T202612010404")

    log = [(r.method, r.path.split("?")[0], r.status) for r in fake.standin.requests]
    assert log == [
        ("POST", "/v3/pay/transactions/jsapi", 200),
        ("GET", "/v3/pay/transactions/out-trade-no/T202612010404", 404),
    ]
    assert json.loads(fake.standin.requests[0].body)["out_trade_no"] == ORDER_NO
