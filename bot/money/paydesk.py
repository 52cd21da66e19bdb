"""The paying side's work that talks to WeChat Pay: the pay page's order, the notifications,
the reconciliation, and the outbox's closes and refunds. The books are bot/money/payments.py.

Usage::

    desk = PayDesk(config, merchant, notices, services.db, clock)
    view = await desk.page(token, openid, in_wechat)   # PayView (bot/money/payviews.py)
    await desk.state(token, openid)                 # {"state": "paid", …} for the waiting page
    bridge = await desk.attempt(token, openid)      # a JSAPI order; raises Invalid or PayError
    status = await desk.notify(headers, raw_body)   # 204, or raises NotifyRefused (4xx)
    await desk.reconcile_once()                     # the sweep's: certificates when due, then
                                                    # orders and refunds gone quiet asked about
    desk.channels()                                 # {"wechatpay_close": Channel, "wechatpay_refund": …}

A notification is believed only when WeChat Pay's signature checks (its public key or a
platform certificate, bot/money/wechatpay_keys.py), its time is less than 5 minutes from now and
its resource decrypts; then its merchant, AppID, out_trade_no and amount must
match our own records. Acting on it is one transaction that locks the order's row, so
WeChat Pay's repeats (and two workers receiving one at once) act once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from bot.codes import Code
from bot.config import Config
from bot.gifting import facts, promises, shares
from bot.money import payments, refunds
from bot.money.merchant import Merchant, NotifyRefused, PayError
from bot.money.payviews import Attempt, PayView, unix
from bot.money.wechatpay import WeChatPayClient
from bot.money.wechatpay_keys import PlatformKeys
from bot.outgoing.notices import Notices
from bot.outgoing.outbox import Channel
from bot.outgoing.subscriptions import Page
from storage.runner import Runner

log = logging.getLogger("gift_bot.payments")


class PayDesk:
    def __init__(
        self,
        config: Config,
        merchant: Merchant,
        notices: Notices,
        db: Runner,
        clock: Callable[[], dt.datetime],
    ):
        self.config, self.merchant, self.notices, self.db, self.clock = (
            config, merchant, notices, db, clock,
        )  # fmt: skip
        self.renderer = notices.renderer
        keys = PlatformKeys(merchant, db)  # platform certificates shared through the database
        self.client = WeChatPayClient(merchant, keys, clock=lambda: unix(self.clock()))
        self.wake: Callable[[], None] = lambda: None  # the outbox worker's, once it exists
        self.every = dt.timedelta(seconds=config.payments.wechatpay.reconcile_seconds)

    def channels(self) -> dict[str, Channel]:
        w = self.config.payments.wechatpay
        return {
            payments.CLOSE: Channel(self.send_close, w.retry_seconds, w.max_attempts),
            refunds.REFUND: Channel(self.send_refund, w.retry_seconds, w.max_attempts),
        }

    def close(self) -> None:
        self.client.close()

    # -- the pay page ------------------------------------------------------------------------

    async def page(self, token: str, openid: str | None, in_wechat: bool = False) -> PayView | None:
        share = await self.db.run(shares.by_token, token)
        if share is None or share.payment == "":
            return None
        if not openid:
            return PayView(share, login=True)
        now = self.clock()
        view = PayView(share, payments.pay_refusal(share, openid, now))
        if view.refusal in (None, Code.PAY_DONE):
            view.promise = await self.db.run(
                promises.on_giver_page, self.config, share, facts.of(share, now), openid,
                in_wechat, now, Page.PAY,
            )  # fmt: skip
        return view

    async def state(self, token: str, openid: str | None) -> dict | None:
        """What the pay page waits for, for its giver only: the share's state; None else."""
        share = await self.db.run(shares.by_token, token)
        if share is None or share.payment == "" or not openid or share.giver_id != openid:
            return None
        seen = facts.of(share, self.clock())
        return {"state": str(seen.state), "paid": seen.paid}

    async def attempt(self, token: str, openid: str) -> Attempt:
        """A new JSAPI order for the share (one per attempt), and the JS bridge's arguments."""
        order = await self.db.write(payments.start_attempt, token, openid, self.clock())
        self.wake()  # earlier attempts are being closed
        description = self.renderer.text(
            "pay/description.txt", gift=order.share.gift, quantity=order.share.quantity
        )
        prepay_id = await self.client.jsapi(
            order.out_trade_no, description, order.amount, openid, order.time_expire
        )
        await self.db.write(payments.keep_prepay, order.out_trade_no, prepay_id)
        log.info(
            "pay order made", extra={"out_trade_no": order.out_trade_no, "share": order.share.id}
        )
        return Attempt(order.out_trade_no, self.client.bridge(prepay_id))

    # -- what WeChat Pay tells us -------------------------------------------------------------

    async def notify(self, headers, body: bytes) -> int:
        """A notification at /pay/notify: 204 when acted on (or acted on before)."""
        now = self.clock()
        if why := await self.client.check(headers, body):
            raise NotifyRefused(401, why)
        note_id, event, resource = self.merchant.open_notification(body)
        if event == "TRANSACTION.SUCCESS":
            outcome = await self._paid(resource, now)
        elif event.startswith("REFUND."):
            outcome = await self._refunded(resource, now)
        else:
            raise NotifyRefused(400, f"unknown event_type {event!r}")
        log.info("pay notification", extra={"event": event, "id": note_id, "outcome": outcome})
        return 204

    async def _paid(self, transaction: dict, now: dt.datetime) -> str:
        """A transaction WeChat Pay vouches for: checked against our order, then settled."""
        number = str(transaction.get("out_trade_no", ""))
        order = await self.db.run(payments.by_trade_no, number)
        if order is None:
            raise NotifyRefused(400, "unknown out_trade_no")
        if why := self.merchant.mismatch(transaction, order.amount):
            raise NotifyRefused(400, why)
        if transaction.get("trade_state") != "SUCCESS":
            raise NotifyRefused(
                400, f"trade_state {transaction.get('trade_state')!r} is no payment"
            )
        return await self._settle(number, transaction, now)

    async def _settle(self, number: str, transaction: dict, now: dt.datetime) -> str:
        """A payment checked against our order: the share is paid (or the money goes back)."""
        outcome = await self.db.write(
            payments.settle_paid, self.notices, self.config, number,
            str(transaction.get("transaction_id", "")), now,
        )  # fmt: skip
        if outcome != "repeat":
            self.wake()
        return outcome

    async def _refunded(self, notice: dict, now: dt.datetime) -> str:
        number = str(notice.get("out_refund_no", ""))
        found = await self.db.run(payments.refund_to_send, number)
        if found is None:
            raise NotifyRefused(400, "unknown out_refund_no")
        refund, order = found
        amount = notice.get("amount") or {}
        if notice.get("mchid") != self.merchant.mchid:
            raise NotifyRefused(400, "mchid is not ours")
        if notice.get("out_trade_no") != order.out_trade_no or not isinstance(amount, dict):
            raise NotifyRefused(400, "refund of another order")
        if amount.get("refund") != refund.amount:
            raise NotifyRefused(400, "refund amount is not ours")
        status = str(notice.get("refund_status", ""))
        changed = await self.db.write(
            payments.settle_refund,
            self.notices,
            number,
            status,
            str(notice.get("refund_id", "")),
            now,
        )
        if changed:
            self.wake()  # the giver's notice, once it succeeded
        return f"refund {status.lower()}" if changed else "repeat"

    # -- the outbox's senders ----------------------------------------------------------------

    async def send_close(self, payload: dict, ref: str) -> None:
        number = payload["out_trade_no"]
        try:
            await self.client.close_order(number)
        except PayError as exc:
            if exc.code == "ORDER_CLOSED":
                pass
            elif exc.code in ("ORDER_PAID", "ORDERPAID"):  # paid before it could be closed
                await self.check_order(number)
                return
            else:
                raise
        await self.db.write(payments.mark_closed, number, self.clock())

    async def send_refund(self, payload: dict, ref: str) -> None:
        number = payload["out_refund_no"]
        found = await self.db.run(payments.refund_to_send, number)
        if found is None:
            return
        refund, order = found
        try:
            answer = await self.client.refund(
                order.out_trade_no, number, refund.amount, order.amount,
                self.renderer.text("pay/refund_reason.txt", reason=refund.reason),
            )  # fmt: skip
        except PayError as exc:
            await self.db.write(payments.refund_failed, number, str(exc), self.clock())
            raise
        await self.db.write(
            payments.settle_refund, self.notices, number, str(answer.get("status", "processing")),
            str(answer.get("refund_id", "")), self.clock(),
        )  # fmt: skip

    # -- reconciliation ----------------------------------------------------------------------

    async def reconcile_once(self) -> int:
        """The sweep's turn at WeChat Pay: platform certificates downloaded when due, then open
        orders and unfinished refunds that have gone quiet asked about, and what WeChat Pay
        says acted on as a notification. Returns how many were asked about."""
        await self.client.refresh_certificates(due_only=True)
        now = self.clock()
        numbers = await self.db.write(payments.quiet_orders, now, now - self.every)
        for number in numbers:
            try:
                await self.check_order(number)
            except PayError as exc:
                log.warning("order query failed", extra={"out_trade_no": number, "error": str(exc)})
        refunds = await self.db.write(payments.quiet_refunds, now, now - self.every)
        for number in refunds:
            try:
                answer = await self.client.query_refund(number)
            except PayError as exc:
                log.warning(
                    "refund query failed", extra={"out_refund_no": number, "error": str(exc)}
                )
                continue
            await self.db.write(
                payments.settle_refund, self.notices, number, str(answer.get("status", "")),
                str(answer.get("refund_id", "")), self.clock(),
            )  # fmt: skip
        return len(numbers) + len(refunds)

    async def check_order(self, number: str) -> str:
        """What WeChat Pay says of one order, acted on: paid, closed, or still waiting."""
        order = await self.db.run(payments.by_trade_no, number)
        if order is None:
            return "unknown"
        now = self.clock()
        try:
            transaction = await self.client.query(number)
        except PayError as exc:
            if exc.code != "ORDER_NOT_EXIST":
                raise
            transaction = {"trade_state": "CLOSED" if order.time_expire <= now else "NOTPAY"}
        state = transaction.get("trade_state")
        if state in ("SUCCESS", "REFUND"):
            if why := self.merchant.mismatch(transaction, order.amount):
                log.error(
                    "queried order does not match ours", extra={"out_trade_no": number, "why": why}
                )
                return "mismatch"
            return await self._settle(number, transaction, now)
        if state == "CLOSED":
            await self.db.write(payments.mark_closed, number, now)
        elif order.time_expire <= now:
            await self.db.write(payments.queue_close, number)
            self.wake()
        return str(state).lower()
