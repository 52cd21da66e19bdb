"""What WeChat Pay checks in a request before it looks at orders: headers, the JSON body and
each field of the JSAPI order, the close and the refund.

Usage::

    check_headers("POST", request.headers)              # 400 INVALID_REQUEST when wrong
    body = parse_body(raw)                              # 400 PARAM_ERROR: not JSON, null, emoji
    order = jsapi_request(body, appid="wx..", mchid="19..")   # JsapiRequest or raises Refusal

Sources (pay.weixin.qq.com/doc/v3/merchant/...): 4012081709 基本规则 (JSON with
Content-Type and Accept `application/json`; UTF-8 of one to three bytes only; no null);
JSAPI/小程序下单 4012791856 and its error table (field sizes, out_trade_no 6-32 of
`0-9A-Za-z_-|*`, amount.total > 0 fen, currency CNY, time_expire RFC 3339,
APPID_MCHID_NOT_MATCH); 关闭订单; 申请退款 (out_refund_no 1-64 of `0-9A-Za-z_-|*@`,
reason 80, amount.refund/total/currency required); the notify_url rules page
(4012075420: full http(s) URL, no parameters, no localhost/intranet address).
Real answers quoted here: "Http头缺少Accept或User-Agent" and "JSAPI支付必须传openid"
(WeChat's community Q&A and the official troubleshooting guide of wechatpay-apiv3/
wechatpay-skills), the notify_url pattern from the gateway's own PARAM_ERROR message,
"参数中含有非法的额外参数" (error 270924358 in that guide).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from handlers.standins.wechatpay_wire import Refusal, parse_rfc3339

OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
# Quoted from the gateway's PARAM_ERROR for a bad notify_url: http(s), no query, no fragment.
NOTIFY_URL = re.compile(r"https?://([^\s/?#\[\]@]+@)?([^\s/?#@:]+)(?::\d{2,5})?([^\s?#\[\]]*)")
MISSING_HEADER = "Http头缺少Accept或User-Agent"
MCHID_MISMATCH = "http header中的mchid与post payload中的mchid不匹配"


@dataclass(frozen=True)
class Field:
    label: str  # the docs' name of the field, quoted in the error message like WeChat Pay does
    kind: type
    required: bool = False
    max_len: int | None = None
    pattern: re.Pattern | None = None
    minimum: int | None = None


JSAPI = {
    "appid": Field("公众账号ID", str, True, 32),
    "mchid": Field("直连商户号", str, True, 32),
    "description": Field("商品描述", str, True, 127),
    "out_trade_no": Field("商户订单号", str, True, pattern=OUT_TRADE_NO),
    "time_expire": Field("支付结束时间", str, max_len=64),
    "attach": Field("商户数据包", str, max_len=128),
    "notify_url": Field("商户回调地址", str, True, 255),
    "goods_tag": Field("订单优惠标记", str, max_len=32),
    "support_fapiao": Field("电子发票入口开放标识", bool),
    "amount": Field("订单金额", dict, True),
    "payer": Field("支付者", dict, True),
    "detail": Field("优惠功能", dict),
    "scene_info": Field("场景信息", dict),
    "settle_info": Field("结算信息", dict),
}
ORDER_AMOUNT = {
    "total": Field("总金额", int, True, minimum=1),
    "currency": Field("货币类型", str, max_len=16),
}
PAYER = {"openid": Field("用户标识", str, True, 128)}
CLOSE = {"mchid": Field("直连商户号", str, True, 32)}
REFUND = {
    "transaction_id": Field("微信支付订单号", str, max_len=32),
    "out_trade_no": Field("商户订单号", str, max_len=32),
    "out_refund_no": Field("商户退款单号", str, True, pattern=OUT_REFUND_NO),
    "reason": Field("退款原因", str, max_len=80),
    "notify_url": Field("退款结果回调url", str, max_len=256),
    "funds_account": Field("退款资金来源", str),
    "amount": Field("金额信息", dict, True),
    "goods_detail": Field("退款商品", list),
}
REFUND_AMOUNT = {
    "refund": Field("退款金额", int, True, minimum=1),
    "total": Field("原订单金额", int, True, minimum=1),
    "currency": Field("退款币种", str, True, 16),
    "from": Field("退款出资账户及金额", list),
}


@dataclass(frozen=True)
class JsapiRequest:
    body: dict  # as sent: the same out_trade_no may come again only with the same body
    out_trade_no: str
    total: int
    openid: str
    notify_url: str
    attach: str | None
    time_expire: float | None


@dataclass(frozen=True)
class RefundRequest:
    out_refund_no: str
    transaction_id: str | None
    out_trade_no: str | None
    refund: int
    total: int
    notify_url: str | None


def check_headers(method: str, headers: Any) -> None:
    """Accept and User-Agent are required of every call; a body must be JSON."""
    accept, agent = headers.get("Accept"), headers.get("User-Agent")
    if not accept or not agent:
        raise Refusal(400, "INVALID_REQUEST", MISSING_HEADER)
    if not _accepts_json(accept):
        raise Refusal(400, "INVALID_REQUEST", "Http头Accept须为application/json")
    if method == "POST" and _media(headers.get("Content-Type", "")) != "application/json":
        raise Refusal(400, "INVALID_REQUEST", "Http头Content-Type须为application/json")


def parse_body(raw: bytes) -> dict:
    """A JSON object in UTF-8 of one to three bytes per character, without null values."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, "PARAM_ERROR", "请求体不是合法的JSON") from None
    if not isinstance(body, dict):
        raise Refusal(400, "PARAM_ERROR", "请求体须为JSON对象")
    for path, value in _leaves(body, ""):
        if value is None:
            raise _param(path, "不允许为null")
        if isinstance(value, str) and _beyond_three_bytes(value):
            raise _param(path, "含有UTF-8四字节编码的字符（如emoji），仅支持一至三个字节的字符")
    return body


def jsapi_request(body: dict, *, appid: str, mchid: str) -> JsapiRequest:
    check_fields(body, JSAPI)
    check_fields(body["amount"], ORDER_AMOUNT, "/amount")
    if body["amount"].get("currency", "CNY") != "CNY":
        raise _param("/amount/currency", "境内商户固定传入CNY")
    if not body["payer"].get("openid"):
        raise Refusal(400, "PARAM_ERROR", "JSAPI支付必须传openid")
    check_fields(body["payer"], PAYER, "/payer")
    check_notify_url(body["notify_url"], "/notify_url")
    time_expire = None
    if "time_expire" in body:
        time_expire = parse_rfc3339(body["time_expire"])
        if time_expire is None:
            raise _param("/time_expire", "须为rfc3339格式，如2018-06-08T10:34:56+08:00")
    if body["mchid"] != mchid:
        raise Refusal(400, "INVALID_REQUEST", MCHID_MISMATCH)
    if body["appid"] != appid:
        raise Refusal(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
    return JsapiRequest(
        body=body,
        out_trade_no=body["out_trade_no"],
        total=body["amount"]["total"],
        openid=body["payer"]["openid"],
        notify_url=body["notify_url"],
        attach=body.get("attach"),
        time_expire=time_expire,
    )


def close_request(body: dict, *, mchid: str) -> None:
    check_fields(body, CLOSE)
    if body["mchid"] != mchid:
        raise Refusal(400, "INVALID_REQUEST", MCHID_MISMATCH)


def refund_request(body: dict) -> RefundRequest:
    check_fields(body, REFUND)
    check_fields(body["amount"], REFUND_AMOUNT, "/amount")
    if body["amount"]["currency"] != "CNY":
        raise _param("/amount/currency", "退款币种固定传CNY")
    if not body.get("transaction_id") and not body.get("out_trade_no"):
        raise _param("/out_trade_no", "transaction_id和out_trade_no必须二选一")
    if body.get("funds_account", "AVAILABLE") not in ("AVAILABLE", "UNSETTLED"):
        raise _param("/funds_account", "枚举值为AVAILABLE或UNSETTLED")
    if "notify_url" in body:
        check_notify_url(body["notify_url"], "/notify_url")
    return RefundRequest(
        out_refund_no=body["out_refund_no"],
        transaction_id=body.get("transaction_id"),
        out_trade_no=body.get("out_trade_no"),
        refund=body["amount"]["refund"],
        total=body["amount"]["total"],
        notify_url=body.get("notify_url"),
    )


def check_notify_url(url: str, field: str) -> None:
    """WeChat Pay's pattern, and no loopback/intranet host. The one deliberate deviation: a
    loopback host is allowed (the sandbox and the tests have no public address), over plain
    http too (no TLS locally); any other host must use https, as WeChat Pay delivers to."""
    if not NOTIFY_URL.fullmatch(url):
        raise _param(field, f"字符串必须匹配正则表达式“^{NOTIFY_URL.pattern}$”", rule="字符串")
    host = urlsplit(url).hostname or ""
    if is_loopback(host):
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (address.is_private or address.is_link_local or address.is_reserved):
        raise _param(field, "不能填写localhost、127.0.0.1、192.168.x.x等本地或内网IP")
    if not url.startswith("https://"):
        raise _param(field, "回调地址须为https地址")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_fields(obj: dict, fields: dict[str, Field], prefix: str = "") -> None:
    for key in obj:
        if key not in fields:
            raise Refusal(
                400,
                "PARAM_ERROR",
                "参数中含有非法的额外参数",
                {"field": f"{prefix}/{key}", "location": "body"},
            )
    for key, field in fields.items():
        path = f"{prefix}/{key}"
        if key not in obj:
            if field.required:
                raise _param(path, "此字段为必填项", label=field.label, rule="必填性")
            continue
        _check_value(obj[key], field, path)


def _check_value(value: Any, field: Field, path: str) -> None:
    # bool is an int to Python, never to WeChat Pay
    if not isinstance(value, field.kind) or (field.kind is int and isinstance(value, bool)):
        raise _param(path, f"类型须为{field.kind.__name__}", label=field.label, rule="类型")
    if field.kind is str and field.required and not value:
        raise _param(path, "此字段为必填项", label=field.label, rule="必填性")
    if field.max_len is not None and len(value) > field.max_len:
        raise _param(path, f"长度不能超过{field.max_len}个字符", label=field.label, rule="字符串")
    if field.pattern is not None and not field.pattern.fullmatch(value):
        raise _param(
            path,
            f"字符串必须匹配正则表达式“^{field.pattern.pattern}$”",
            label=field.label,
            rule="字符串",
        )
    if field.minimum is not None and value < field.minimum:
        raise _param(path, f"必须大于等于{field.minimum}", label=field.label, rule="数值")


def _param(path: str, why: str, *, label: str = "", rule: str = "") -> Refusal:
    """PARAM_ERROR worded like WeChat Pay's, with a detail that points at the field."""
    named = f"映射到字段“{label}”" if label else ""
    message = f"输入源“/body{path}”{named}{rule}规则校验失败，{why}"
    return Refusal(400, "PARAM_ERROR", message, {"field": path, "location": "body"})


def _leaves(value: Any, path: str):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}/{index}")
    else:
        yield path, value


def _beyond_three_bytes(text: str) -> bool:
    """A character UTF-8 writes in four bytes; the \\ud83c\\udf81 escapes of an emoji decode to
    the same character as its raw bytes do. A lone surrogate is no character at all."""
    return any(ord(c) > 0xFFFF or 0xD800 <= ord(c) <= 0xDFFF for c in text)


def _accepts_json(accept: str) -> bool:
    return any(
        _media(part) in ("application/json", "application/*", "*/*") for part in accept.split(",")
    )


def _media(value: str) -> str:
    return value.split(";")[0].strip().lower()
