"""The WeChat Pay stand-in as a merchant of platform certificates (and one switching to the
public key), driven by the wechatpayv3 SDK, which downloads `/v3/certificates` itself and
checks every answer by its `Wechatpay-Serial`, and by hand from the docs: the list's fields
as the docs' example, each certificate decrypted with the APIv3 key, the answers signed by
the certificate they name, rotations as WeChat Pay makes them."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fakes.wechatpay import API_V3_KEY, FakeWeChatPay, MerchantKeys, NotifyReceiver
from paysdk import ORDER_NO, MovableClock, order, quick_stand_in, sdk, signed_by_hand

SCHEME = "WECHATPAY2-SHA256-RSA2048"


@pytest.fixture(scope="module")
def keys() -> MerchantKeys:
    return MerchantKeys.generate()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def shop():
    with NotifyReceiver() as receiver:
        yield receiver


@pytest.fixture
def fake(keys, clock):
    with quick_stand_in(keys, clock, "certificates") as running:
        yield running


@pytest.fixture
def switching(keys, clock):
    """A merchant in the middle of the switch from certificates to WeChat Pay's public key."""
    with FakeWeChatPay(keys, clock=clock, verification="both") as running:
        yield running


def certificate_sdk(fake, keys: MerchantKeys, notify_url: str):
    """The SDK as a merchant of platform certificates. Its constructor would download them from
    the real gateway (hard-coded), so it is made with a placeholder key, pointed at the
    stand-in, emptied of the key, and then downloads them as it does (core.py)."""
    placeholder = fake.standin.platform_public_key_pem.decode()
    wxpay = sdk(fake, keys, notify_url, public_key=placeholder, public_key_id="PUB_KEY_ID_0")
    wxpay._core._public_key = wxpay._core._public_key_id = None
    wxpay._core._update_certificates()
    return wxpay


def listing(fake, keys, query: str = "") -> tuple[object, dict[str, x509.Certificate]]:
    """GET /v3/certificates by hand; the answer and its certificates, decrypted by hand."""
    answer = signed_by_hand(fake, keys.merchant, "GET", "/v3/certificates" + query)
    assert answer.status_code == 200, answer.text
    found = {}
    for item in answer.json()["data"]:
        sealed = item["encrypt_certificate"]
        pem = AESGCM(API_V3_KEY.encode()).decrypt(
            sealed["nonce"].encode(),
            base64.b64decode(sealed["ciphertext"]),
            sealed["associated_data"].encode(),
        )
        found[item["serial_no"]] = x509.load_pem_x509_certificate(pem)
    return answer, found


def signed_by(certificate: x509.Certificate, headers, body: bytes) -> bool:
    message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode()
    try:
        certificate.public_key().verify(
            base64.b64decode(headers["Wechatpay-Signature"]),
            message + body + b"\n",
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except Exception:
        return False
    return True


def test_the_list_has_the_docs_fields_and_certificates_that_decrypt_to_their_serials(fake, keys):
    answer, found = listing(fake, keys)

    [item] = answer.json()["data"]
    assert list(item) == ["serial_no", "effective_time", "expire_time", "encrypt_certificate"]
    sealed = item["encrypt_certificate"]
    assert list(sealed) == ["algorithm", "nonce", "associated_data", "ciphertext"]
    assert (sealed["algorithm"], sealed["associated_data"]) == ("AEAD_AES_256_GCM", "certificate")
    assert len(sealed["nonce"]) == 12
    serial = item["serial_no"]
    assert len(serial) == 40 and serial == serial.upper() and serial == fake.standin.signing_serial
    certificate = found[serial]
    assert f"{certificate.serial_number:040X}" == serial
    assert "Tenpay.com" in certificate.subject.rfc4514_string()
    effective = dt.datetime.fromisoformat(item["effective_time"])
    expire = dt.datetime.fromisoformat(item["expire_time"])
    assert item["effective_time"].endswith("+08:00") and item["expire_time"].endswith("+08:00")
    assert effective == certificate.not_valid_before_utc
    assert expire == certificate.not_valid_after_utc
    assert answer.headers["Wechatpay-Serial"] == serial
    assert answer.headers["Wechatpay-Signature-Type"] == SCHEME
    assert signed_by(certificate, answer.headers, answer.content)
    assert fake.standin.public_key_id is None  # this merchant never had WeChat Pay's public key


@pytest.mark.parametrize(("query", "count"), [("?algorithm_type=RSA", 1), ("?algorithm_type=ALL", 1),
                                              ("?algorithm_type=SM2", 0)])  # fmt: skip
def test_the_list_follows_algorithm_type(fake, keys, query, count):
    answer, found = listing(fake, keys, query)

    assert len(found) == count


def test_an_unknown_algorithm_type_and_a_merchant_of_the_public_key_alone_are_refused(keys):
    with FakeWeChatPay(keys, verification="certificates") as fake:
        bad = signed_by_hand(fake, keys.merchant, "GET", "/v3/certificates?algorithm_type=DSA")
        assert (bad.status_code, bad.json()["code"]) == (400, "PARAM_ERROR")
    with FakeWeChatPay(keys, verification="public_key") as fake:
        none = signed_by_hand(fake, keys.merchant, "GET", "/v3/certificates")
        assert (none.status_code, none.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")


def test_the_sdk_without_a_public_key_downloads_the_certificates_and_checks_answers_with_them(
    fake, keys, shop
):
    wxpay = certificate_sdk(fake, keys, shop.notify_url)

    status, text = order(wxpay)  # the SDK raises when the answer's signature does not check

    assert status == 200 and json.loads(text)["prepay_id"].startswith("wx")
    assert [r.path for r in fake.standin.requests] == [
        "/v3/certificates",
        "/v3/pay/transactions/jsapi",
    ]
    fake.standin.pay(ORDER_NO)
    assert [a.status for a in fake.deliver()] == [204]
    [received] = shop.received
    assert received["headers"]["Wechatpay-Serial"] == fake.standin.signing_serial
    assert (
        wxpay.callback(received["headers"], received["body"])["resource"]["out_trade_no"]
        == ORDER_NO
    )


def test_a_rotation_lists_the_new_certificate_first_then_signs_with_it_then_retires_the_old(
    fake, keys, shop, clock
):
    wxpay = certificate_sdk(fake, keys, shop.notify_url)
    old = fake.standin.signing_serial

    new = fake.standin.issue_certificate()

    answer, found = listing(fake, keys)
    assert set(found) == {old, new} and answer.headers["Wechatpay-Serial"] == old
    fake.standin.use_certificate(new)
    answer, found = listing(fake, keys)
    assert answer.headers["Wechatpay-Serial"] == new and signed_by(
        found[new], answer.headers, answer.content
    )
    expire = {i["serial_no"]: i["expire_time"] for i in answer.json()["data"]}
    soon = dt.datetime.fromisoformat(expire[old]).timestamp() - clock()
    assert 86000 < soon <= 86400  # the old one's 弃用时间 moved to 24 hours from now
    assert order(wxpay)[0] == 200  # the SDK meets an unknown serial: downloads, then checks
    fake.standin.retire_certificate(old)
    assert set(listing(fake, keys)[1]) == {new}


def test_a_switching_merchant_gets_key_signed_answers_when_it_names_the_key(switching, keys):
    asks_key = signed_by_hand(switching, keys.merchant, "GET", "/v3/refund/domestic/refunds/R1",
                              headers={"Wechatpay-Serial": switching.standin.public_key_id})  # fmt: skip
    asks_nothing = signed_by_hand(switching, keys.merchant, "GET", "/v3/refund/domestic/refunds/R1")

    assert asks_key.headers["Wechatpay-Serial"] == switching.standin.public_key_id
    assert asks_nothing.headers["Wechatpay-Serial"] == switching.standin.signing_serial
    _, found = listing(switching, keys)
    assert signed_by(found[switching.standin.signing_serial], asks_nothing.headers,
                     asks_nothing.content)  # fmt: skip


def test_a_switching_merchants_notifications_come_signed_either_way(switching, keys, shop):
    wxpay = sdk(switching, keys, shop.notify_url)
    wxpay._core._update_certificates()  # the SDK's combined verifier: key and certificates
    assert order(wxpay)[0] == 200
    switching.standin.pay(ORDER_NO)
    switching.deliver()
    switching.standin.repeat_notification(switching.standin.notifications[0].id)
    switching.standin.sign_next("notification", "public_key")
    switching.deliver()

    first, second = shop.received
    assert first["headers"]["Wechatpay-Serial"] == switching.standin.signing_serial
    assert second["headers"]["Wechatpay-Serial"] == switching.standin.public_key_id
    for received in (first, second):
        assert wxpay.callback(received["headers"], received["body"]) is not None


def test_sign_next_can_label_another_signature_type(fake, keys):
    fake.standin.sign_next("answer", signature_type="WECHATPAY2-SM2-WITH-SM3")

    answer = signed_by_hand(fake, keys.merchant, "GET", "/v3/refund/domestic/refunds/R1")

    assert answer.headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SM2-WITH-SM3"
    again = signed_by_hand(fake, keys.merchant, "GET", "/v3/refund/domestic/refunds/R1")
    assert again.headers["Wechatpay-Signature-Type"] == SCHEME
    with pytest.raises(ValueError):
        fake.standin.sign_next("notification", "public_key")  # it has none


def test_a_timestamp_of_5000_digits_is_refused_as_stale_not_a_crash(fake, keys):
    answer = signed_by_hand(fake, keys.merchant, "GET", "/v3/refund/domestic/refunds/R1",
                            timestamp="9" * 5000)  # fmt: skip

    assert (answer.status_code, answer.json()["code"]) == (401, "SIGN_ERROR")
    assert "5分钟" in answer.json()["message"]
    assert (
        signed_by_hand(fake, keys.merchant, "GET", "/v3/refund/domestic/refunds/R1").status_code
        == 404
    )
