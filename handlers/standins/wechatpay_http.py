"""WeChat Pay API v3's HTTP face for the stand-in: each request authenticated, routed, answered
and signed, as `handlers/standins/wechatpay.py`'s WeChatPayStandIn does it (a mixin: the state
and the controls live there).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import tornado.web

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
    dump,
    parse_authorization,
    request_id,
    request_message,
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


class Api:
    """The requests side of WeChatPayStandIn."""

    # -- requests -------------------------------------------------------------------------

    def handle(self, method: str, uri: str, headers: Any, body: bytes) -> Answer:
        """One request in (its URI after the prefix), one answer out; both logged."""
        with self._lock:
            self._asked = headers.get("Wechatpay-Serial", "")  # the gray switch looks at it
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
        if len(auth.timestamp) > 12 or abs(self.clock() - int(auth.timestamp)) > FIVE_MINUTES:
            raise sign_error(STALE)
        if auth.mchid != self.mchid or auth.serial_no.upper() != self.merchant_serial_no.upper():
            raise sign_error(BAD_SERIAL)
        message = request_message(method, uri, auth.timestamp, auth.nonce, body)
        if not verify(self.merchant_public_key, message, auth.signature):
            raise sign_error(BAD_SIGNATURE, _sign_information(method, uri, message))

    def _signed(self, status: int, result: dict | None) -> Answer:
        body = dump(result) if result is not None else b""
        probe, self._probe_answer = self._probe_answer, False
        return Answer(status, self._sign(body, probe) | (JSON if body else {}), body)

    def _error(self, refusal: Refusal, delay: float = 0.0) -> Answer:
        body = dump(refusal.body())
        return Answer(refusal.status, self._sign(body) | JSON, body, delay)

    def _sign(self, body: bytes, probe: bool = False) -> dict[str, str]:
        key, serial, kind = self._signature("answer", self._asked)
        return answer_headers(key, serial, body, self.clock(), probe=probe, signature_type=kind)

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
        self._settle_later(refund)
        return 200, self.ledger.refund_view(refund)

    def _query_refund(self, query: dict, raw: bytes, out_refund_no: str) -> tuple[int, dict]:
        return 200, self.ledger.refund_view(self.ledger.find_refund(out_refund_no))

    def _certificates(self, query: dict, raw: bytes) -> tuple[int, dict]:
        return 200, self.listing(query)

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

    def initialize(self, standin: Api, prefix: str) -> None:
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
