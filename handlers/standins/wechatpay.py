"""A stand-in for WeChat Pay API v3 (a direct merchant, JSAPI), as strict as the real one: it
refuses what WeChat Pay refuses, with its status and `{"code","message"}`, and signs with its
public key, its platform certificates, or both (a merchant switching over).

Usage::

    standin = WeChatPayStandIn(
        mchid="1900000109", appid="wx0fake0app0id0000",
        merchant_public_key=pem, merchant_serial_no="5157F09EFDC096DE15EBE81A47057A72",
        api_v3_key="a 32-character APIv3 key.......",
        verification="public_key",             # or "certificates", or "both": wechatpay_certs.py
    )                                          # and its own key pair unless given one
    standin.public_key_id, standin.platform_public_key_pem   # what the merchant configures
    standin.rotate_certificate()               # and the other controls of wechatpay_certs.py
    app = tornado.web.Application(standin.routes("/dev/wechatpay"))   # api_base = <host>/dev/wechatpay

    standin.pay("T202601010001")               # the payer paid; a TRANSACTION.SUCCESS is queued
    standin.pay("T202601010002", notify_after=30)   # ... and its notification comes late
    await standin.deliver_notifications()      # POST what waits to its notify_url, once
    standin.start_sender()                     # or keep sending, and retrying, from the loop
    standin.settle_refund("R1", "SUCCESS")     # a refund's outcome; its REFUND.* is queued
    WeChatPayStandIn(…, settle_refunds_after=3.0)   # or each refund succeeds by itself, 3 s on,
                                               # and its REFUND.SUCCESS is sent (the sandbox)
    standin.fail_next("refund", code="NOT_ENOUGH")   # the next refund call is refused so
    standin.stall_next("refund", seconds=10)   # or answered too late, though done
    standin.signtest_next("notification")      # the next try is signed WECHATPAY/SIGNTEST/...
    standin.requests, standin.notifications    # what came in, what went out

Endpoints (under the prefix): POST /v3/pay/transactions/jsapi; GET
/v3/pay/transactions/out-trade-no/{no}?mchid= and /v3/pay/transactions/id/{id}?mchid=;
POST /v3/pay/transactions/out-trade-no/{no}/close; POST /v3/refund/domestic/refunds;
GET /v3/refund/domestic/refunds/{no}; GET /v3/certificates (404 for a merchant of the
public key alone, as measured).

The signature covers the path after the prefix, as a client whose gateway is
`<host><prefix>` signs it. The one deliberate deviation from WeChat Pay: a
notify_url on a loopback host is accepted, over plain http too, since the
sandbox and the tests have no public address and no TLS.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from handlers.standins.wechatpay_certs import Signing
from handlers.standins.wechatpay_http import (
    ENDPOINTS,
    FAILURES,
    SUMMARY,
    Api,
    Received,
    _Handler,
    _Injection,
)
from handlers.standins.wechatpay_ledger import Ledger, Order, Refund
from handlers.standins.wechatpay_notify import Attempt, Notification, Notifier
from handlers.standins.wechatpay_wire import (
    Refusal,
    answer_headers,
    digits,
    encrypt_resource,
    load_private_key,
    load_public_key,
    public_pem,
    rfc3339,
)


class WeChatPayStandIn(Api, Signing):
    """WeChat Pay for one merchant and one AppID: the API, its notifications, and knobs."""

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        merchant_public_key: bytes | str | rsa.RSAPublicKey,
        merchant_serial_no: str,
        api_v3_key: str,
        platform_private_key: bytes | str | rsa.RSAPrivateKey | None = None,
        public_key_id: str | None = None,
        clock: Callable[[], float] = time.time,
        retry_scale: float = 1.0,
        answer_timeout: float = 5.0,
        verification: str = "public_key",
        certificate_key: bytes | str | rsa.RSAPrivateKey | None = None,
        settle_refunds_after: float | None = None,
    ):
        if len(api_v3_key.encode()) != 32:
            raise ValueError("the APIv3 key has 32 characters: it is the AES-256 key")
        self.mchid, self.appid, self.api_v3_key = mchid, appid, api_v3_key
        self.merchant_public_key = load_public_key(merchant_public_key)
        self.merchant_serial_no = merchant_serial_no
        if platform_private_key is None:
            platform_private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.platform_key = load_private_key(platform_private_key)
        self.public_key_id: str | None = public_key_id or "PUB_KEY_ID_0112" + digits(24)
        self.clock = clock
        self._lock = threading.RLock()  # knobs run in the caller's thread, requests in the loop's
        key = load_private_key(certificate_key) if certificate_key is not None else None
        self._init_signing(verification, key)
        self.ledger = Ledger(mchid, appid, clock)
        self.notifier = Notifier(self._sign_notification, clock, retry_scale, answer_timeout)
        self.requests: list[Received] = []
        self._injections: dict[str, list[_Injection]] = {}
        self._probe_answer = False
        # Balance refunds succeed within seconds; None: only settle_refund() ends one.
        self.settle_refunds_after = settle_refunds_after
        self._settling: set[str] = set()

    @property
    def platform_public_key_pem(self) -> bytes:
        return public_pem(self.platform_key)

    @property
    def orders(self) -> dict[str, Order]:
        return self.ledger.orders

    @property
    def refunds(self) -> dict[str, Refund]:
        return self.ledger.refunds

    @property
    def notifications(self) -> list[Notification]:
        return self.notifier.notifications

    def routes(self, prefix: str = "") -> list:
        """Tornado URL specs serving the API under `prefix` (e.g. "/dev/wechatpay")."""
        return [(re.escape(prefix) + r"(/v3/.*)", _Handler, {"standin": self, "prefix": prefix})]

    # -- the payer, the bank and the network: controls for tests and the sandbox -----------

    def pay(
        self, out_trade_no: str, openid: str | None = None, *, notify_after: float = 0.0
    ) -> Notification:
        """The payer paid: SUCCESS, a transaction_id, and a TRANSACTION.SUCCESS queued, due
        now or `notify_after` seconds later (the sender keeps it back till then)."""
        with self._lock:
            order = self.ledger.pay(out_trade_no, openid)
            plaintext = self.ledger.transaction(order)
            url = order.request.notify_url
            return self._notify(url, "TRANSACTION.SUCCESS", "transaction", plaintext, notify_after)

    def settle_refund(
        self, out_refund_no: str, status: str = "SUCCESS", *, notify_after: float = 0.0
    ) -> Notification | None:
        """A refund's outcome: SUCCESS, CLOSED, or ABNORMAL (not final); then its REFUND.*
        notification, if the refund named a notify_url."""
        with self._lock:
            refund = self.ledger.settle(out_refund_no, status)
            if not refund.notify_url:
                return None
            notice = self.ledger.refund_notice(refund)
            return self._notify(
                refund.notify_url, f"REFUND.{status}", "refund", notice, notify_after
            )

    def _settle_later(self, refund: Refund) -> None:
        """With `settle_refunds_after`: this refund succeeds that long after it was accepted,
        as the bank settles it, and its REFUND.SUCCESS goes out (once per refund)."""
        if self.settle_refunds_after is None or refund.out_refund_no in self._settling:
            return
        try:
            loop = asyncio.get_running_loop()  # requests are answered on the serving loop
        except RuntimeError:
            return
        self._settling.add(refund.out_refund_no)
        loop.call_later(self.settle_refunds_after, self._settle_now, refund.out_refund_no)

    def _settle_now(self, out_refund_no: str) -> None:
        with self._lock:
            if self.ledger.refunds[out_refund_no].status != "PROCESSING":
                return  # settled by hand meanwhile
            self.settle_refund(out_refund_no, "SUCCESS")
        self.start_sender()

    async def deliver_notifications(
        self, *, due_only: bool = False, reverse: bool = False
    ) -> list[Attempt]:
        """One try for each waiting notification (`reverse`: out of order); see Notifier."""
        return await self.notifier.deliver(due_only=due_only, reverse=reverse)

    def start_sender(self) -> None:
        """Send and retry notifications from a task on the running loop, as WeChat Pay would."""
        self.notifier.start()

    def stop_sender(self) -> None:
        self.notifier.stop()

    def repeat_notification(self, notification_id: str) -> None:
        """Send a notification again though it was answered, as WeChat Pay may."""
        self.notifier.repeat(notification_id)

    def signtest_next(self, target: str = "notification") -> None:
        """WeChat Pay now and then signs an answer or a notification wrongly on purpose, with
        a `WECHATPAY/SIGNTEST/` signature, to see that it is checked: do so next time."""
        if target == "notification":
            self.notifier.probe_next()
        elif target == "answer":
            self._probe_answer = True
        else:
            raise ValueError("signtest_next('notification') or signtest_next('answer')")

    def fail_next(
        self,
        endpoint: str,
        status: int | None = None,
        code: str = "SYSTEM_ERROR",
        message: str | None = None,
        *,
        times: int = 1,
    ) -> None:
        """The next `times` signed calls to `endpoint` get this error and change nothing."""
        default_status, default_message = FAILURES.get(code, (400, code))
        refusal = Refusal(status or default_status, code, message or default_message)
        self._inject(endpoint, [_Injection(refusal)] * times)

    def stall_next(self, endpoint: str, seconds: float, *, processed: bool = True) -> None:
        """The next call to `endpoint` is answered `seconds` late, so its caller times out. With
        `processed` it took effect all the same (what retries must survive); without, it did
        not, and the late answer is 500 SYSTEM_ERROR."""
        refusal = None if processed else Refusal(500, "SYSTEM_ERROR", "系统超时")
        self._inject(endpoint, [_Injection(refusal, seconds)])

    def _inject(self, endpoint: str, injections: list[_Injection]) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}: one of {sorted(ENDPOINTS)}")
        with self._lock:
            self._injections.setdefault(endpoint, []).extend(injections)

    # -- notifications ---------------------------------------------------------------------

    def _sign_notification(self, body: bytes, probe: bool) -> dict[str, str]:
        with self._lock:
            key, serial, kind = self._signature("notification")
        headers = answer_headers(key, serial, body, self.clock(), probe=probe, signature_type=kind)
        return headers | {"User-Agent": "Mozilla/4.0"}  # what WeChat Pay's notifications send

    def _notify(
        self, url: str, event_type: str, original_type: str, plaintext: dict, after: float
    ) -> Notification:
        envelope = {
            "id": str(uuid.uuid4()),
            "create_time": rfc3339(self.clock()),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": SUMMARY[event_type],
            "resource": encrypt_resource(self.api_v3_key, original_type, plaintext),
        }
        return self.notifier.queue(envelope, url, plaintext, after)

    # -- the endpoints: check the request, then ask the ledger ----------------------------
