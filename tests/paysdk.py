"""The WeChat Pay stand-in (tests/fakes/wechatpay.py) driven from outside, as a merchant would:
by the official-protocol SDK (wechatpayv3) and by hand from the docs. For test_wechatpay_*.py;
the bot's own side of paying is tests/paying.py's.

Usage in a test module::

    from paysdk import ORDER_NO, MovableClock, order, quick_stand_in, sdk, signed_by_hand

    @pytest.fixture
    def fake(keys, clock):                 # keys: MerchantKeys.generate(); clock: MovableClock()
        with quick_stand_in(keys, clock, "public_key") as running:   # or "certificates"
            yield running

    wxpay = sdk(fake, keys, shop.notify_url)        # the SDK pointed at the stand-in
    status, text = order(wxpay)                     # a JSAPI order, ORDER_NO, 1 yuan
    signed_by_hand(fake, keys.merchant, "GET", "/v3/certificates")   # a requests.Response
    clock.offset += 600                             # the stand-in's time, 10 minutes on
"""

from __future__ import annotations

import base64
import secrets
import time

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from fakes.wechatpay import API_V3_KEY, APPID, MCHID, SERIAL_NO, FakeWeChatPay, MerchantKeys
from wechatpayv3 import WeChatPay, WeChatPayType

ORDER_NO = "T202612010001"


class MovableClock:
    """Unix seconds, `offset` ahead of the wall clock the SDK signs with."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def quick_stand_in(keys: MerchantKeys, clock: MovableClock, verification: str) -> FakeWeChatPay:
    """The stand-in retrying 100 000 times faster than WeChat Pay, and waiting 0.5 s for an
    answer instead of 5 s; a context manager that serves it on its own port."""
    return FakeWeChatPay(
        keys, clock=clock, retry_scale=1e-5, answer_timeout=0.5, verification=verification
    )


def sdk(fake: FakeWeChatPay, keys: MerchantKeys, notify_url: str, **overrides) -> WeChatPay:
    options = {
        "wechatpay_type": WeChatPayType.JSAPI,
        "mchid": MCHID,
        "private_key": keys.merchant_pem,
        "cert_serial_no": SERIAL_NO,
        "appid": APPID,
        "apiv3_key": API_V3_KEY,
        "notify_url": notify_url,
        "public_key": fake.standin.platform_public_key_pem.decode(),
        "public_key_id": fake.standin.public_key_id,
        "timeout": (2, 5),
    }
    client = WeChatPay(**(options | overrides))
    client._core._gate_way = fake.gateway  # hard-coded in wechatpayv3/core.py Core.__init__
    return client


def order(wxpay: WeChatPay, no: str = ORDER_NO, total: int = 100, **extra) -> tuple[int, str]:
    options = {"payer": {"openid": "o_giver"}} | extra
    return wxpay.pay(
        description="礼物卡·玫瑰",
        out_trade_no=no,
        amount={"total": total, "currency": "CNY"},
        **options,
    )


def signed_by_hand(
    fake, key, method: str, path: str, body: bytes = b"", **options
) -> requests.Response:
    """A request made from the docs alone: sign `METHOD\\nURL\\nTS\\nNONCE\\nBODY\\n` (RSA-SHA256,
    PKCS#1 v1.5, base64) and send it with Authorization, Accept, User-Agent, Content-Type."""
    timestamp = options.pop("timestamp", str(int(time.time())))
    nonce = secrets.token_hex(16)
    message = f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
    signature = base64.b64encode(
        key.sign(options.pop("signed", message), padding.PKCS1v15(), hashes.SHA256())
    )
    authorization = (
        f'WECHATPAY2-SHA256-RSA2048 mchid="{MCHID}",nonce_str="{nonce}",timestamp="{timestamp}",'
        f'serial_no="{SERIAL_NO}",signature="{signature.decode()}"'
    )
    headers = {
        "Authorization": authorization,
        "Accept": "application/json",
        "User-Agent": "gift-bot-tests",
        "Content-Type": "application/json",
    } | options.pop("headers", {})
    return requests.request(
        method, fake.gateway + path, data=options.pop("send", body), headers=headers, timeout=5
    )
