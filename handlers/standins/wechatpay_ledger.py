"""WeChat Pay's books for one merchant: orders by out_trade_no, refunds by out_refund_no, the
rules of ordering, paying, closing and refunding, and what the API shows of each.

Usage::

    ledger = Ledger(mchid="1900000109", appid="wx..", clock=time.time)
    ledger.order(jsapi_request)              # {"prepay_id": "wx.."} or raises Refusal
    ledger.pay("T0001", openid=None)         # the payer paid (a control, not an API call)
    ledger.transaction(ledger.find("T0001")) # the query's answer, also the notification's text
    refund = ledger.refund(refund_request)   # PROCESSING; ledger.settle(no, "SUCCESS") ends it

Sources (pay.weixin.qq.com/doc/v3/merchant/...): JSAPI/小程序下单 4012791856 (the same
out_trade_no with the same parameters gets a fresh prepay_id; time_expire is fixed once
set, at least one minute away, 7 days by default; ORDER_CLOSED); 商户订单号查询订单
4013070356 (ORDER_NOT_EXIST; trade_state and its desc); 关闭订单 4013070360 (204,
re-entrant); 申请退款 and 查询单笔退款 (RESOURCE_NOT_EXISTS "请检查订单号是否正确且是否
已支付", up to 50 partial refunds, a minute apart, within a year, never more than was
paid, one refund per out_refund_no); 订单状态流转 in wechatpay-apiv3/wechatpay-skills
(REFUND once a refund is made; only SUCCESS orders refund). Where the docs give no code,
real answers quoted by integrators decide, and each such place says "measured".
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from handlers.standins.wechatpay_rules import JsapiRequest, RefundRequest
from handlers.standins.wechatpay_wire import Refusal, digits, rfc3339

NOTPAY, SUCCESS, CLOSED, REFUND = "NOTPAY", "SUCCESS", "CLOSED", "REFUND"
TRADE_STATE_DESC = {
    NOTPAY: "订单未支付",
    SUCCESS: "支付成功",
    CLOSED: "订单已关闭",
    REFUND: "订单发生过退款",
}
PROCESSING, REFUND_OUTCOMES = "PROCESSING", ("SUCCESS", "CLOSED", "ABNORMAL")
DAY = 86400
MAX_REFUNDS = 50
REENTRY = "请求重入时，参数与首次请求时不一致"
AMOUNT_MISMATCH = "订单金额或退款金额与之前请求不一致，请核实后再试"


@dataclass
class Order:
    request: JsapiRequest
    created: float
    time_expire: float
    trade_state: str = NOTPAY
    transaction_id: str | None = None
    success_time: float | None = None

    @property
    def paid(self) -> bool:
        return self.trade_state in (SUCCESS, REFUND)


@dataclass
class Refund:
    out_refund_no: str
    refund_id: str
    order: Order
    refund: int
    notify_url: str | None
    created: float
    status: str = PROCESSING
    success_time: float | None = None


class Ledger:
    def __init__(self, mchid: str, appid: str, clock: Callable[[], float]):
        self.mchid, self.appid, self.clock = mchid, appid, clock
        self.orders: dict[str, Order] = {}
        self.refunds: dict[str, Refund] = {}
        self._closed_unseen: set[str] = set()

    # -- orders ---------------------------------------------------------------------------

    def order(self, request: JsapiRequest) -> dict:
        number, now = request.out_trade_no, self.clock()
        if number in self._closed_unseen:
            # measured (an integrator's log, 2026-09): a number closed before any order is spent
            raise Refusal(400, "INVALID_REQUEST", REENTRY)
        order = self.orders.get(number)
        if order is None:
            expiry = max(request.time_expire, now + 60) if request.time_expire else now + 7 * DAY
            self.orders[number] = Order(request, now, expiry)
        elif order.paid:
            raise Refusal(400, "ORDERPAID", "该订单已支付")  # measured; not in the error table
        elif order.trade_state == CLOSED:
            raise Refusal(400, "ORDER_CLOSED", "订单已关闭")
        elif order.request.body != request.body:
            # measured: "400 INVALID_REQUEST 请求重入时，参数与首次请求时不一致"
            raise Refusal(400, "INVALID_REQUEST", REENTRY)
        return {"prepay_id": "wx" + _compact(now) + uuid.uuid4().hex[:20]}

    def find(self, out_trade_no: str) -> Order:
        order = self.orders.get(out_trade_no)
        if order is None:
            raise Refusal(404, "ORDER_NOT_EXIST", "订单不存在")
        return order

    def find_by_transaction(self, transaction_id: str) -> Order:
        order = self._by_transaction(transaction_id)
        if order is None:
            raise Refusal(404, "ORDER_NOT_EXIST", "订单不存在")
        return order

    def close(self, out_trade_no: str) -> None:
        order = self.orders.get(out_trade_no)
        if order is None:
            self._closed_unseen.add(out_trade_no)  # measured: 204 for a number never ordered
        elif order.paid:
            # the troubleshooting guide: "关单已支付的订单？返回 ORDER_PAID"; 400 measured
            raise Refusal(400, "ORDER_PAID", "订单已支付")
        else:
            order.trade_state = CLOSED  # closing a closed order again is fine: re-entrant

    def pay(self, out_trade_no: str, openid: str | None = None) -> Order:
        """The payer paid in WeChat: SUCCESS, a transaction_id, the time. Raises ValueError
        for what WeChat itself would not let happen."""
        order = self.orders.get(out_trade_no)
        if order is None:
            raise ValueError(f"no order {out_trade_no}")
        if order.trade_state != NOTPAY:
            raise ValueError(f"order {out_trade_no} is {order.trade_state}: nothing to pay")
        if openid not in (None, order.request.openid):
            raise ValueError("下单账号与支付账号不一致: only the payer named in the order can pay")
        now = self.clock()
        if now > order.time_expire:
            raise ValueError(
                f"order {out_trade_no} could be paid until {rfc3339(order.time_expire)}"
            )
        order.trade_state, order.success_time = SUCCESS, now
        order.transaction_id = "4200" + digits(4) + _day(now) + digits(12)
        return order

    # -- refunds --------------------------------------------------------------------------

    def refund(self, request: RefundRequest) -> Refund:
        order, now = self._order_of(request), self.clock()
        existing = self.refunds.get(request.out_refund_no)
        if existing is not None:
            # one out_refund_no refunds once: the same request again is that refund
            same_money = (existing.refund, existing.order.request.total) == (
                request.refund,
                request.total,
            )
            if existing.order is order and same_money:
                return existing
            raise Refusal(400, "INVALID_REQUEST", AMOUNT_MISMATCH)
        if order is None or not order.paid:
            raise Refusal(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if now - (order.success_time or now) > 365 * DAY:
            raise Refusal(400, "TRADE_OVERDUE", "订单已超过一年，无法退款")
        if request.total != order.request.total:
            # measured: a total of 229 for an order of 230 got exactly this
            raise Refusal(400, "INVALID_REQUEST", AMOUNT_MISMATCH)
        earlier = [r for r in self.refunds.values() if r.order is order]
        if len(earlier) >= MAX_REFUNDS:
            raise Refusal(400, "INVALID_REQUEST", "部分退款次数不能超过50次")
        # a CLOSED refund returned nothing: its amount may be refunded again
        if (
            sum(r.refund for r in earlier if r.status != "CLOSED") + request.refund
            > order.request.total
        ):
            raise Refusal(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")  # measured
        if earlier and now - max(r.created for r in earlier) < 60:
            raise Refusal(429, "FREQUENCY_LIMITED", "同一笔订单多次退款的请求需相隔1分钟")
        refund_id = "5030" + digits(7) + _day(now) + digits(10)
        refund = Refund(
            request.out_refund_no, refund_id, order, request.refund, request.notify_url, now
        )
        self.refunds[refund.out_refund_no] = refund
        order.trade_state = REFUND
        return refund

    def find_refund(self, out_refund_no: str) -> Refund:
        refund = self.refunds.get(out_refund_no)
        if refund is None:
            raise Refusal(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return refund

    def settle(self, out_refund_no: str, status: str) -> Refund:
        """The bank's word on a refund: SUCCESS, CLOSED, or ABNORMAL (which may still end)."""
        if status not in REFUND_OUTCOMES:
            raise ValueError(f"a refund ends SUCCESS, CLOSED or ABNORMAL, not {status}")
        refund = self.refunds[out_refund_no]
        if refund.status not in (PROCESSING, "ABNORMAL"):
            raise ValueError(f"refund {out_refund_no} is already {refund.status}")
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = self.clock()
        return refund

    # -- what the API shows ---------------------------------------------------------------

    def transaction(self, order: Order) -> dict:
        """An order as a query answers it and, once paid, as its notification says. Real
        answers show an unpaid order without payer, transaction_id, trade_type or currency."""
        request = order.request
        view: dict[str, Any] = {
            "amount": {"payer_currency": "CNY", "total": request.total},
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": request.out_trade_no,
            "promotion_detail": [],
            "scene_info": {"device_id": ""},
            "trade_state": order.trade_state,
            "trade_state_desc": TRADE_STATE_DESC[order.trade_state],
        }
        if request.attach is not None:
            view["attach"] = request.attach
        if order.transaction_id:
            total = request.total
            view |= {
                "amount": {
                    "currency": "CNY",
                    "payer_currency": "CNY",
                    "payer_total": total,
                    "total": total,
                },
                "bank_type": "OTHERS",
                "payer": {"openid": request.openid},
                "success_time": rfc3339(order.success_time or 0),
                "trade_type": "JSAPI",
                "transaction_id": order.transaction_id,
            }
        return view

    def refund_view(self, refund: Refund) -> dict:
        """A refund as 申请退款 and 查询单笔退款 answer it."""
        total = refund.order.request.total
        view = {
            "amount": {
                "currency": "CNY",
                "discount_refund": 0,
                "from": [],
                "payer_refund": refund.refund,
                "payer_total": total,
                "refund": refund.refund,
                "settlement_refund": refund.refund,
                "settlement_total": total,
                "total": total,
            },
            "channel": "ORIGINAL",
            "create_time": rfc3339(refund.created),
            "funds_account": "AVAILABLE",
            "out_refund_no": refund.out_refund_no,
            "out_trade_no": refund.order.request.out_trade_no,
            "promotion_detail": [],
            "refund_id": refund.refund_id,
            "status": refund.status,
            "transaction_id": refund.order.transaction_id,
            "user_received_account": "支付用户零钱",
        }
        if refund.success_time is not None:
            view["success_time"] = rfc3339(refund.success_time)
        return view

    def refund_notice(self, refund: Refund) -> dict:
        """The plaintext of a REFUND.* notification (退款结果通知)."""
        total = refund.order.request.total
        notice = {
            "mchid": self.mchid,
            "out_trade_no": refund.order.request.out_trade_no,
            "transaction_id": refund.order.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": refund.status,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": total,
                "refund": refund.refund,
                "payer_total": total,
                "payer_refund": refund.refund,
            },
        }
        if refund.success_time is not None:
            notice["success_time"] = rfc3339(refund.success_time)
        return notice

    def _by_transaction(self, transaction_id: str) -> Order | None:
        return next((o for o in self.orders.values() if o.transaction_id == transaction_id), None)

    def _order_of(self, request: RefundRequest) -> Order | None:
        if request.transaction_id:
            return self._by_transaction(request.transaction_id)
        return self.orders.get(request.out_trade_no or "")


def _day(unix: float) -> str:
    return rfc3339(unix)[:10].replace("-", "")


def _compact(unix: float) -> str:
    return "".join(c for c in rfc3339(unix)[:19] if c.isdigit())
