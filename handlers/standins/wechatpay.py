"""A stand-in for WeChat Pay API v3 (a direct merchant, JSAPI, public-key mode), as strict as
the real one: it refuses what WeChat Pay refuses, with its status and `{"code","message"}`.

Usage::

    standin = WeChatPayStandIn(
        mchid="1900000109", appid="wx0fake0app0id0000",
        merchant_public_key=pem, merchant_serial_no="5157F09EFDC096DE15EBE81A47057A72",
        api_v3_key="a 32-character APIv3 key.......",
    )                                          # and its own key pair unless given one
    standin.public_key_id, standin.platform_public_key_pem   # what the merchant configures
    app = tornado.web.Application(standin.routes("/dev/wechatpay"))   # api_base = <host>/dev/wechatpay

    standin.pay("T202601010001")               # the payer paid; a TRANSACTION.SUCCESS is queued
    standin.pay("T202601010002", notify_after=30)   # ... and its notification comes late
    await standin.deliver_notifications()      # POST what waits to its notify_url, once
    standin.start_sender()                     # or keep sending, and retrying, from the loop
    standin.settle_refund("R1", "SUCCESS")     # a refund's outcome; its REFUND.* is queued
    standin.fail_next("refund", code="NOT_ENOUGH")   # the next refund call is refused so
    standin.stall_next("refund", seconds=10)   # or answered too late, though done
    standin.signtest_next("notification")      # the next try is signed WECHATPAY/SIGNTEST/...
    standin.requests, standin.notifications    # what came in, what went out

Endpoints (under the prefix): POST /v3/pay/transactions/jsapi; GET
/v3/pay/transactions/out-trade-no/{no}?mchid= and /v3/pay/transactions/id/{id}?mchid=;
POST /v3/pay/transactions/out-trade-no/{no}/close; POST /v3/refund/domestic/refunds;
GET /v3/refund/domestic/refunds/{no}; GET /v3/certificates (none: public-key mode).

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
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import tornado.web
from cryptography.hazmat.primitives.asymmetric import rsa

from handlers.standins.wechatpay_ledger import Ledger, Order, Refund
from handlers.standins.wechatpay_notify import Attempt, Notification, Notifier
from handlers.standins.wechatpay_rules import (
    check_headers,
    close_request,
    jsapi_request,
    parse_body,
    refund_request,
)
from handlers.standins.wechatpay_wire import (
    BAD_SERIAL,
    BAD_SIGNATURE,
    STALE,
    Refusal,
    answer_headers,
    digits,
    dump,
    encrypt_resource,
    load_private_key,
    load_public_key,
    parse_authorization,
    public_pem,
    request_id,
    request_message,
    rfc3339,
    sign_error,
    verify,
)

FIVE_MINUTES = 300
JSON = {"Content-Type": "application/json; charset=utf-8"}
SUMMARY = {
    "TRANSACTION.SUCCESS": "支付成功",
    "REFUND.SUCCESS": "退款成功",
    "REFUND.CLOSED": "退款关闭",
    "REFUND.ABNORMAL": "退款异常",
}
ROUTES = (  # method, path, endpoint: the name fail_next and stall_next take
    ("POST", r"/v3/pay/transactions/jsapi", "jsapi"),
    ("GET", r"/v3/pay/transactions/out-trade-no/([^/]+)", "query"),
    ("GET", r"/v3/pay/transactions/id/([^/]+)", "query_by_id"),
    ("POST", r"/v3/pay/transactions/out-trade-no/([^/]+)/close", "close"),
    ("POST", r"/v3/refund/domestic/refunds", "refund"),
    ("GET", r"/v3/refund/domestic/refunds/([^/]+)", "query_refund"),
    ("GET", r"/v3/certificates", "certificates"),
)
ENDPOINTS = frozenset(endpoint for _, _, endpoint in ROUTES)
# An injected code's status and message, as the API pages' error tables give them.
FAILURES = {
    "SYSTEM_ERROR": (500, "系统错误"),
    "BANK_ERROR": (500, "银行系统异常"),
    "NOT_ENOUGH": (403, "基本账户余额不足，请充值后重新发起"),
    "USER_ACCOUNT_ABNORMAL": (403, "退款请求失败"),
    "NO_AUTH": (403, "商户无权限"),
    "FREQUENCY_LIMITED": (429, "频率超限"),
    "SERVICE_UNAVAILABLE": (503, "服务不可用，请稍后重试"),
}


@dataclass
class Received:
    method: str
    path: str  # path and query as signed: after the prefix
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds to hold the answer back: a stall


@dataclass
class _Injection:
    refusal: Refusal | None  # None: do the work, only answer late
    seconds: float = 0.0


class WeChatPayStandIn:
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
    ):
        if len(api_v3_key.encode()) != 32:
            raise ValueError("the APIv3 key has 32 characters: it is the AES-256 key")
        self.mchid, self.appid, self.api_v3_key = mchid, appid, api_v3_key
        self.merchant_public_key = load_public_key(merchant_public_key)
        self.merchant_serial_no = merchant_serial_no
        if platform_private_key is None:
            platform_private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.platform_key = load_private_key(platform_private_key)
        self.public_key_id = public_key_id or "PUB_KEY_ID_0112" + digits(24)
        self.clock = clock
        self.ledger = Ledger(mchid, appid, clock)
        self.notifier = Notifier(self._sign_notification, clock, retry_scale, answer_timeout)
        self.requests: list[Received] = []
        self._injections: dict[str, list[_Injection]] = {}
        self._probe_answer = False
        self._lock = threading.RLock()  # knobs run in the caller's thread, requests in the loop's

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

    # -- requests -------------------------------------------------------------------------

    def handle(self, method: str, uri: str, headers: Any, body: bytes) -> Answer:
        """One request in (its URI after the prefix), one answer out; both logged."""
        with self._lock:
            answer = self._answer(method, uri, headers, body)
            self.requests.append(Received(method, uri, dict(headers), body, answer.status))
            return answer

    def _answer(self, method: str, uri: str, headers: Any, body: bytes) -> Answer:
        path, _, query = uri.partition("?")
        route = _match(method, path)
        if isinstance(route, int):
            return Answer(route)  # probed: an unknown path 404s, a wrong method 405s, no body
        endpoint, args = route
        try:
            check_headers(method, headers)
            self._authenticate(method, uri, headers, body)
        except Refusal as refusal:
            # probed: these 400s and 401s carry a Request-ID but no Wechatpay-* signature
            unsigned = {"Request-ID": request_id(), **JSON}
            return Answer(refusal.status, unsigned, dump(refusal.body()))
        queued = self._injections.get(endpoint)
        injection = queued.pop(0) if queued else None
        if injection and injection.refusal:
            return self._error(injection.refusal, delay=injection.seconds)
        try:
            status, result = getattr(self, f"_{endpoint}")(
                parse_qs(query), body, *map(unquote, args)
            )
            answer = self._signed(status, result)
        except Refusal as refusal:
            answer = self._error(refusal)
        answer.delay = injection.seconds if injection else 0.0
        return answer

    def _authenticate(self, method: str, uri: str, headers: Any, body: bytes) -> None:
        """The checks behind 401 SIGN_ERROR, in WeChat Pay's order: the header's form, the
        time window (probed: before the signature), the merchant's certificate, the signature."""
        auth = parse_authorization(headers.get("Authorization"))
        if abs(self.clock() - int(auth.timestamp)) > FIVE_MINUTES:
            raise sign_error(STALE)
        if auth.mchid != self.mchid or auth.serial_no.upper() != self.merchant_serial_no.upper():
            raise sign_error(BAD_SERIAL)
        message = request_message(method, uri, auth.timestamp, auth.nonce, body)
        if not verify(self.merchant_public_key, message, auth.signature):
            raise sign_error(BAD_SIGNATURE, _sign_information(method, uri, message))

    def _signed(self, status: int, result: dict | None) -> Answer:
        body = dump(result) if result is not None else b""
        probe, self._probe_answer = self._probe_answer, False
        headers = answer_headers(
            self.platform_key, self.public_key_id, body, self.clock(), probe=probe
        )
        return Answer(status, headers | (JSON if body else {}), body)

    def _error(self, refusal: Refusal, delay: float = 0.0) -> Answer:
        body = dump(refusal.body())
        headers = answer_headers(self.platform_key, self.public_key_id, body, self.clock())
        return Answer(refusal.status, headers | JSON, body, delay)

    def _sign_notification(self, body: bytes, probe: bool) -> dict[str, str]:
        headers = answer_headers(
            self.platform_key, self.public_key_id, body, self.clock(), probe=probe
        )
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

    def _jsapi(self, query: dict, raw: bytes) -> tuple[int, dict]:
        request = jsapi_request(parse_body(raw), appid=self.appid, mchid=self.mchid)
        return 200, self.ledger.order(request)

    def _query(self, query: dict, raw: bytes, out_trade_no: str) -> tuple[int, dict]:
        self._check_mchid_query(query)
        return 200, self.ledger.transaction(self.ledger.find(out_trade_no))

    def _query_by_id(self, query: dict, raw: bytes, transaction_id: str) -> tuple[int, dict]:
        self._check_mchid_query(query)
        return 200, self.ledger.transaction(self.ledger.find_by_transaction(transaction_id))

    def _close(self, query: dict, raw: bytes, out_trade_no: str) -> tuple[int, None]:
        close_request(parse_body(raw), mchid=self.mchid)
        self.ledger.close(out_trade_no)
        return 204, None

    def _refund(self, query: dict, raw: bytes) -> tuple[int, dict]:
        refund = self.ledger.refund(refund_request(parse_body(raw)))
        return 200, self.ledger.refund_view(refund)

    def _query_refund(self, query: dict, raw: bytes, out_refund_no: str) -> tuple[int, dict]:
        return 200, self.ledger.refund_view(self.ledger.find_refund(out_refund_no))

    def _certificates(self, query: dict, raw: bytes) -> tuple[int, dict]:
        # measured: what a merchant in public-key mode gets from the certificate download
        raise Refusal(
            404,
            "RESOURCE_NOT_EXISTS",
            "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥。",
        )

    def _check_mchid_query(self, query: dict) -> None:
        mchid = (query.get("mchid") or [""])[0]
        if not mchid:
            # quoted from a real answer to a call that left mchid out
            raise Refusal(
                400,
                "PARAM_ERROR",
                "输入源“/uri_template/mchid”映射到字段“直连商户号”必填性规则校验失败，此字段为必填项",
                {"location": "uri_template", "value": ""},
            )
        if mchid != self.mchid:
            raise Refusal(400, "INVALID_REQUEST", "http header中的mchid与请求参数中的mchid不匹配")


class _Handler(tornado.web.RequestHandler):
    """Every method on every /v3 path: the stand-in decides what exists."""

    def initialize(self, standin: WeChatPayStandIn, prefix: str) -> None:
        self.standin, self.prefix = standin, prefix

    def check_xsrf_cookie(self) -> None:
        """Callers prove themselves with the Authorization signature, not a cookie."""

    async def _serve(self, path: str) -> None:
        uri = self.request.uri[len(self.prefix) :]
        answer = self.standin.handle(
            self.request.method, uri, self.request.headers, self.request.body
        )
        if answer.delay:
            await asyncio.sleep(answer.delay)
        self.set_status(answer.status)
        self.clear_header("Content-Type")
        for name, value in answer.headers.items():
            self.set_header(name, value)
        self.finish(answer.body or None)

    get = post = put = patch = delete = _serve


def _match(method: str, path: str) -> tuple[str, tuple[str, ...]] | int:
    allowed = False
    for route_method, pattern, endpoint in ROUTES:
        match = re.fullmatch(pattern, path)
        if match and route_method == method:
            return endpoint, match.groups()
        allowed = allowed or bool(match)
    return 405 if allowed else 404


def _sign_information(method: str, uri: str, message: bytes) -> dict:
    """The detail WeChat Pay adds when a signature does not verify (4012072670)."""
    return {
        "field": "signature",
        "issue": "sign not match",
        "location": "authorization",
        "sign_information": {
            "method": method,
            "url": uri,
            "truncated_sign_message": message[:200].decode(errors="replace"),
            "sign_message_length": len(message),
        },
    }
