"""The platform-certificate vectors of WeChat Pay's official SDKs (tests/samples/wechatpay/,
sources in its SOURCES.md) through the bot's own code: each certificate download decrypts to
the certificate its serial names, with the validity its row gives; their published
signatures verify with their certificates; a first download signed by the certificate it
brings is believed, and the time window and the signature type hold as the SDKs hold them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.money.merchant import Merchant
from bot.money.wechatpay_certs import Certificate, Unusable, open_download
from bot.money.wechatpay_keys import SCHEME, Fetched, PlatformKeys, read_signed, verify
from handlers.standins.wechatpay_wire import answer_headers
from storage import db as storage
from storage.models import PlatformCertificate
from storage.runner import Runner

VECTORS = Path(__file__).parent / "samples" / "wechatpay"
JAVA_KEY = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"
GO_KEY = "mockAPIv3Key1234"  # 16 characters: the Go SDK's mock decrypts with AES-128-GCM
IN_2024 = dt.datetime(2024, 6, 1)


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def test_the_java_sdks_download_decrypts_to_the_certificate_its_serial_names():
    [certificate] = open_download(vector("java_download.json"), JAVA_KEY, IN_2024)

    assert certificate.serial_no == "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC"
    subject = x509.load_pem_x509_certificate(certificate.pem.encode()).subject.rfc4514_string()
    assert "CN=Tenpay.com sign" in subject  # a real platform certificate, as WeChat Pay lists
    assert certificate.effective_at == dt.datetime(2023, 9, 19, 15, 15, 58)  # 23:15:58+08:00
    assert certificate.expires_at == dt.datetime(2028, 9, 17, 15, 15, 58)
    assert open_download(vector("java_download.json"), JAVA_KEY, dt.datetime(2029, 1, 1)) == []


def test_the_go_sdks_download_decrypts_to_its_published_certificate():
    [certificate] = open_download(vector("go_download.json"), GO_KEY, IN_2024)

    assert certificate.serial_no == "D7CE59D1F522D701"
    assert certificate.pem.strip() == vector("go_platform_certificate.pem").decode().strip()
    assert certificate.effective_at == dt.datetime(2021, 4, 27, 8, 55, 23)
    assert certificate.expires_at == dt.datetime(2031, 4, 25, 8, 55, 23)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda b: b.replace(b'"serial_no":"D7CE59D1F522D701"', b'"serial_no":"D7CE59D1F522D702"'),
         "carries serial"),
        (lambda b: b.replace(b'"nonce":"3a584b49ed9b"', b'"nonce":"3a584b49ed9c"'), "does not decrypt"),
        (lambda b: b.replace(b"AEAD_AES_256_GCM", b"AEAD_SM4_GCM"), "unknown algorithm"),
        (lambda b: b.replace(b'"data":[', b'"data":{"x":').replace(b"]}", b"}}"), "not a list"),
        (lambda b: b.replace(b"+08:00", b""), "not a list"),  # times without their offset
    ],
    ids=["serial-mismatch", "tampered", "algorithm", "not-a-list", "naive-times"],
)  # fmt: skip
def test_a_download_that_does_not_hold_together_is_unusable(change, why):
    with pytest.raises(Unusable, match=why):
        open_download(change(vector("go_download.json")), GO_KEY, IN_2024)


def test_the_published_signatures_verify_with_their_certificates():
    go = Certificate.load("F5765756002FDD77", vector("go_verifier_certificate.pem").decode(),
                          dt.datetime.min, dt.datetime.max)  # fmt: skip
    go_signature = (
        "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hA"
        "m6pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpU"
        "HlCqIMzoZUguLli/K8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G"
        "4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg=="
    )
    java = Certificate.load("5F1C72E2A8931B72A2E13AF8DEE92471EB397115",
                            vector("java_merchant_certificate.pem").decode(),
                            dt.datetime.min, dt.datetime.max)  # fmt: skip
    java_signature = (
        "Rq+5ZpWV6IHTWE1+9gCrYJKguNgbItpMdlIA+PVCPCdUAKNlohZz7CL7Y8xWDIFJjdGnErMj6Z+Q/h9CF5MV+nA"
        "VkqDmBR0uP5ppsUEzco4ijvKHsvI2ro4boSW6vSfQs3W8I4QSI9a0/NFIgvj83Fv27LIYZf7deaFWmEwd1fpAeJ"
        "RCyoKyBeJPdsjVx0//Lqe6Wze2zVdliLcBvaHCfpd8+rAVGS+FQDeWgHqJ7n/Zy09LmV1/ghs7pO1mdjdD16SHK"
        "lysAD3K5hNGUJX/SHrEXEcu1yO1AOb/YvOVkjNh8243rcfXNE5L4ph2XS11vS+2aToKYSOcKUagf0LLaw=="
    )

    assert verify(go.public_key, b"source", go_signature)
    assert not verify(go.public_key, b"wrong source", go_signature)
    assert verify(java.public_key, b"message", java_signature)
    assert not verify(go.public_key, b"message", java_signature)


def test_a_certificate_whose_serial_is_not_the_one_named_is_refused():
    with pytest.raises(Unusable, match="carries serial"):
        Certificate.load("F5765756002FDD78", vector("go_verifier_certificate.pem").decode(),
                         dt.datetime.min, dt.datetime.max)  # fmt: skip


@pytest.mark.parametrize(
    ("age", "believed"),
    [(0, True), (299, True), (-299, True), (300, False), (-300, False), (301, False)],
)
def test_the_window_is_less_than_five_minutes_as_the_go_and_java_sdks_hold_it(age, believed):
    now = 1_796_000_000.0
    headers = signature_headers(str(int(now) - age))

    assert isinstance(read_signed(headers, now + 0.9), str) is not believed


@pytest.mark.parametrize("kind", ["", "WECHATPAY2-SM2-WITH-SM3", "wechatpay2-sha256-rsa2048"])
def test_only_the_rsa_signature_type_is_read(kind):
    headers = signature_headers("1796000000") | {"Wechatpay-Signature-Type": kind}

    assert "Signature-Type" in read_signed(headers, 1_796_000_000)


def test_a_timestamp_too_long_for_int_is_malformed_not_a_crash():
    assert "malformed" in read_signed(signature_headers("1" * 5000), 1_796_000_000)


def signature_headers(timestamp: str) -> dict[str, str]:
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": "mockNonce1234",
        "Wechatpay-Signature": "c2ln",
        "Wechatpay-Serial": "D7CE59D1F522D701",
        "Wechatpay-Signature-Type": SCHEME,
    }


def test_the_go_sdks_download_signed_by_its_own_key_is_believed_as_the_first(tmp_path):
    """Nothing known yet: the download must be signed by a certificate it brings. The Go SDK's
    published download, signed (RSA-SHA256 is deterministic) by its published platform key."""
    storage.connect(f"sqlite:///{tmp_path / 'vectors.db'}")
    storage.migrate()
    db = Runner.for_database(1)
    merchant = merchant_with(GO_KEY)
    keys = PlatformKeys(merchant, db)
    body = vector("go_download.json")
    key = serialization.load_pem_private_key(vector("go_platform_key.pem"), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    now = dt.datetime(2024, 6, 1, tzinfo=dt.UTC).timestamp()
    signed = answer_headers(key, "D7CE59D1F522D701", body, now)
    stranger = answer_headers(rsa.generate_private_key(65537, 2048), "D7CE59D1F522D701", body, now)

    def download(headers: dict, at: float) -> bool:
        async def fetch() -> Fetched:
            return Fetched(200, headers, body)

        return asyncio.run(keys.refresh(fetch, at))

    try:
        assert download(stranger, now) is False  # not signed by the certificate it brings
        assert PlatformCertificate.select().count() == 0
        assert download(signed, now + 61) is True
        assert [row.serial_no for row in PlatformCertificate.select()] == ["D7CE59D1F522D701"]
    finally:
        db.close()
        storage.db.close()


def merchant_with(api_v3_key: str) -> Merchant:
    return Merchant(
        mchid="1234567890", appid="wx0fake0app0id0000", api_v3_key=api_v3_key,
        private_key=rsa.generate_private_key(65537, 2048), serial_no="BE6DCDA7A5931FA0",
        public_key=None, public_key_id="", api_base="https://api.mch.weixin.qq.com",
        notify_url="https://shop.example.com/pay/notify",
    )  # fmt: skip
