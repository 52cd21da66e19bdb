"""The bot in [payments] mode "wechatpay" against the WeChat Pay stand-in on its own port.

Usage::

    # fixtures (in conftest.py): pay_bot, and pay_keys (made once per module)

    def test_x(pay_bot):
        bot, pay = pay_bot                      # LiveBot; FakeWeChatPay (pay.standin: controls)
        token = share_to_pay(bot, quantity="2") # the giver's dialogue; the pay link's token
        out_trade_no, bridge = open_pay_page(bot, token)   # the giver's attempt: a JSAPI order
        pay.standin.pay(out_trade_no); pay.deliver()       # paid; the notification delivered
        balance_holds()                          # paid = claimed + refunded + open, everywhere

A paid run (GIFTBOT_TEST_PAYMENTS=wechatpay, conftest.py) gives every `bot` its own stand-in
(`bot.pay`, keys from run_keys()) and its `wx` a Payer: helpers.confirm_card then pays after
确认 the way a giver does (pay page, JSAPI order, paid at the stand-in, the signed notification
through /pay/notify, the card from the giver's chat); refunds_made(bot) lists the refunds that
reached the stand-in ([] in free mode).

The stand-in's clock is the bot's (tests move it), so signatures, time windows, an order's
time_expire and the one-minute rule between refunds all run on the same time.

WeChat Pay's signature: with GIFTBOT_TEST_WECHATPAY_VERIFY=certificates (tests/fakes/wechatpay.py)
every stand-in is a merchant's of platform certificates and pay_overrides leaves the public
key out, so the same tests run the bot in certificate mode; `paying_bot(..., verification=)`
picks one mode whatever the run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
import uuid
from collections.abc import Callable
from urllib.parse import urljoin

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from fakes.wechatpay import (
    API_V3_KEY,
    MCHID,
    SERIAL_NO,
    FakeWeChatPay,
    MerchantKeys,
    eventually,
    private_pem,
)
from helpers import WECHAT_UA, browser, say, xsrf

from bot.money import paybooks
from handlers.standins.wechatpay_wire import answer_headers, dump, encrypt_resource, rfc3339
from storage.models import PayOrder, Refund


@pytest.fixture(scope="module")
def pay_keys() -> MerchantKeys:
    return MerchantKeys.generate()  # RSA key generation is slow: once per module


@functools.cache
def run_keys() -> MerchantKeys:
    """The keys of every bot a GIFTBOT_TEST_PAYMENTS=wechatpay run starts: made once per run."""
    return MerchantKeys.generate()


def unix(bot) -> float:
    return bot.clock().replace(tzinfo=dt.UTC).timestamp()


def pay_overrides(tmp_path, keys: MerchantKeys, pay: FakeWeChatPay, **wechatpay) -> dict:
    """[payments] in wechatpay mode against `pay`: with WeChat Pay's public key when its
    stand-in has one, else (a merchant of platform certificates) with both its keys empty."""
    private = tmp_path / "apiclient_key.pem"
    private.write_text(private_pem(keys.merchant))
    public = tmp_path / "pub_key.pem"
    public.write_bytes(
        keys.platform.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    key_id = pay.standin.public_key_id
    return {
        "payments": {
            "mode": "wechatpay",
            "wechatpay": {
                "mchid": MCHID,
                "api_v3_key": API_V3_KEY,
                "private_key_path": str(private),
                "cert_serial_no": SERIAL_NO,
                "public_key_path": str(public) if key_id else "",
                "public_key_id": key_id or "",
                "api_base": pay.gateway,
                "retry_seconds": 1,
                "timeout_seconds": 2,
                "reconcile_seconds": 60,
            }
            | wechatpay,
        }
    }


@contextlib.contextmanager
def paying_bot(bot_factory, keys: MerchantKeys, tmp_path, **options):
    """(bot, pay): a bot in wechatpay mode against its own stand-in, on the bot's clock;
    `options` go to FakeWeChatPay (verification="certificates": a merchant of certificates)."""
    holder: dict = {}
    fake = FakeWeChatPay(
        keys, clock=lambda: unix(holder["bot"]), retry_scale=1e-4, answer_timeout=2, **options
    )
    with fake as pay:
        bot = bot_factory(**pay_overrides(tmp_path, keys, pay))
        holder["bot"] = bot
        yield bot, pay


@pytest.fixture
def pay_bot(bot_factory, pay_keys, tmp_path):
    with paying_bot(bot_factory, pay_keys, tmp_path) as pair:
        yield pair


def share_to_pay(bot, giver="o_giver", quantity="1", number="1", blessing="生日快乐") -> str:
    """The giver's share dialogue in wechatpay mode; the token of the pay link it ends with."""
    reply = say(bot, giver, number, "送", quantity, blessing, "确认")
    url = re.search(r"(http\S+/pay/(\S+))", reply)
    assert url and url.group(1) == f"{bot.url}/pay/{url.group(2)}", reply
    return url.group(2)


def open_pay_page(bot, token: str, giver="o_giver") -> tuple[str, dict]:
    """The giver opens the pay page and taps the button: (the new out_trade_no, the bridge)."""
    session = browser(bot, giver)
    page = session.get(f"{bot.url}/pay/{token}", timeout=10)
    assert page.status_code == 200, page.text
    before = {o.out_trade_no for o in PayOrder.select()}
    answer = session.post(f"{bot.url}/pay/{token}/order", data={"_xsrf": xsrf(page)}, timeout=10)
    assert answer.status_code == 200, answer.text
    (number,) = {o.out_trade_no for o in PayOrder.select()} - before
    return number, answer.json()["bridge"]


def pay_for(bot, pay: FakeWeChatPay, token: str, giver="o_giver") -> str:
    """Open the pay page, pay, deliver the notification; the out_trade_no paid."""
    number, _ = open_pay_page(bot, token, giver)
    pay.standin.pay(number)
    attempts = pay.deliver()
    assert [a.status for a in attempts] == [204], attempts
    return number


def refunds_made(bot) -> list[tuple[str, int]]:
    """(reason, units) of each refund WeChat Pay's stand-in was asked for, once the outbox is
    drained; always [] for a bot in free mode (nothing was paid)."""
    if bot.config.payments.mode == "free":
        return []
    bot.drain()
    at_pay = bot.pay.standin.refunds  # a paid run's bot (conftest.LiveBot)
    made = [r for r in Refund.select().order_by(Refund.id) if r.out_refund_no in at_pay]
    balance_holds()
    return [(r.reason, r.units) for r in made]


def post_notify(bot, body: bytes, headers: dict) -> requests.Response:
    return requests.post(f"{bot.url}/pay/notify", data=body, headers=headers, timeout=10)


def balance_holds() -> dict:
    books = paybooks.balance()
    for row in books["shares"]:
        assert row["balanced"], row
    total = books["total"]
    assert total["paid"] == total["claimed"] + total["refunded"] + total["open"], total
    return books


def signed_notification(
    pay: FakeWeChatPay,
    plaintext: dict,
    now: float,
    event_type: str = "TRANSACTION.SUCCESS",
    api_v3_key: str = API_V3_KEY,
    signer=None,
    serial: str | None = None,
) -> tuple[bytes, dict]:
    """A notification as WeChat Pay writes one, signed by the key or certificate the stand-in
    signs its notifications with (or, with another api_v3_key, signer or serial, as a forger
    would): its body and headers."""
    original = "transaction" if event_type.startswith("TRANSACTION") else "refund"
    envelope = {
        "id": str(uuid.uuid4()),
        "create_time": rfc3339(now),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": encrypt_resource(api_v3_key, original, plaintext),
    }
    body = dump(envelope)
    key, own_serial = pay.standin.notification_signer
    headers = answer_headers(signer or key, serial or own_serial, body, now)
    return body, headers | {"Content-Type": "application/json"}


def transaction_of(pay: FakeWeChatPay, number: str, **changes) -> dict:
    """What WeChat Pay's notification of this order says, once paid (changes: a forger's)."""
    plaintext = pay.standin.ledger.transaction(pay.standin.orders[number])
    return plaintext | changes


class Payer:
    """What a giver does after 确认 in wechatpay mode, for the share helpers of a
    GIFTBOT_TEST_PAYMENTS=wechatpay run (helpers.confirm_card): open the pay page in WeChat,
    tap the button (a JSAPI order at the stand-in), pay there, have its signed notification
    reach /pay/notify, and read the card the giver then gets in chat.

    `url`: the server the giver talks to; `wechat`: the fake WeChat API its cards go through;
    `settle(found)`: work the outbox until `found()` holds (a LiveBot drains; a `serve`
    process's own workers do it, so a cluster waits)."""

    def __init__(self, url: str, pay: FakeWeChatPay, wechat, settle: Callable) -> None:
        self.url, self.pay, self.wechat, self.settle = url, pay, wechat, settle

    def card(self, giver: str, reply: dict) -> dict:
        """The card (Title, Description, Url, PicUrl, as a news reply has them) once the share
        that `reply` (确认's answer: the pay link) asks to pay for is paid. The card's message
        is taken out of the fake WeChat's list, read: the test then sees what it would see in
        free mode, where the card is 确认's reply."""
        link = re.search(r"(http\S+)/pay/([\w-]+)", reply.get("Content", ""))
        assert link, f"确认 did not lead to payment: {reply}"
        public, token = link.groups()
        holder = (self.wechat.user, self.wechat.consents)  # whoever holds the phone after
        self.wechat.set_user(giver)
        try:
            browser = _Browser(public, self.url)
            page = browser.go("GET", f"{public}/pay/{token}")
            assert page.status_code == 200, page.text
            before = set(self.pay.standin.orders)
            answer = browser.go("POST", f"{public}/pay/{token}/order", {"_xsrf": xsrf(page)})
            assert answer.status_code == 200, answer.text
        finally:
            self.wechat.set_user(*holder)
        (number,) = set(self.pay.standin.orders) - before
        self.pay.standin.pay(number)
        for note in self.pay.standin.notifications:  # the proxy in front of a public address
            note.url = note.url.replace(public, self.url, 1)
        attempts = self.pay.deliver()
        assert attempts and all(a.status in (200, 204) for a in attempts), attempts

        def sent() -> list[dict]:
            return [
                m for m in list(self.wechat.messages)
                if m["touser"] == giver and m["msgtype"] == "news"
                and m["news"]["articles"][0]["url"] == f"{public}/claim/{token}"
            ]  # fmt: skip

        self.settle(lambda: bool(sent()))
        (message,) = sent()
        self.wechat.messages.remove(message)
        (card,) = message["news"]["articles"]
        names = {"title": "Title", "description": "Description", "url": "Url", "picurl": "PicUrl"}
        return {names[key]: value for key, value in card.items()}


class _Browser:
    """WeChat's browser at the bot's public address, reached at the server's own: redirects
    back to `public` go to `server`, and cookies go along even when marked Secure (a public
    https address in front of a plain local server)."""

    def __init__(self, public: str, server: str) -> None:
        self.public, self.server = public, server
        self.cookies: dict[str, str] = {}

    def go(self, method: str, url: str, data: dict | None = None) -> requests.Response:
        for _ in range(5):
            local = url.replace(self.public, self.server, 1)
            answer = requests.request(
                method, local, data=data, timeout=10, allow_redirects=False,
                headers={"User-Agent": WECHAT_UA, "Cookie": "; ".join(
                    f"{k}={v}" for k, v in self.cookies.items()) if local.startswith(self.server) else ""},
            )  # fmt: skip
            for header in answer.raw.headers.getlist("Set-Cookie"):
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            if answer.status_code not in (301, 302, 303, 307):
                return answer
            url = urljoin(local, answer.headers["Location"])
            method, data = "GET", None
        raise AssertionError(f"too many redirects at {url}")


def live_payer(bot, pay: FakeWeChatPay) -> Payer:
    """The Payer of a LiveBot: the outbox drained on the test's thread."""

    def settle(found: Callable[[], bool]) -> None:
        bot.drain()
        assert found(), "no card after the payment"

    return Payer(bot.url, pay, bot.fake_wechat, settle)


def serve_payer(server, pay: FakeWeChatPay, wechat) -> Payer:
    """The Payer of a `serve` process (tests/cluster.py): its own workers send the card."""

    def settle(found: Callable[[], bool]) -> None:
        assert eventually(found, timeout=10), "no card after the payment"

    return Payer(server.url, pay, wechat, settle)
