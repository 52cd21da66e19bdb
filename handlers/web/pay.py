"""The giver's pay page and WeChat Pay's notifications ([payments] mode "wechatpay").

GET  /pay/<token>            the gift, the amount, the pay button (the giver only: OAuth first);
                             `?paying=1`: paid a moment ago, the page waits for the notification
GET  /pay/<token>/state      {"state", "paid"}: what the waiting page polls (the giver only)
POST /pay/<token>/order      a new JSAPI order for this attempt → the JS bridge's arguments (JSON)
POST /pay/notify             WeChat Pay's notifications: signed, timed, encrypted; 204 or 4xx
POST /pay/<token>/simulate   the /dev sandbox only: the built-in stand-in of WeChat Pay takes
                             the payment and sends its signed notification to /pay/notify

Each handler awaits one call of `bot.money.paydesk.PayDesk` and renders or answers what it says.
"""

from __future__ import annotations

import logging

import tornado.web

from bot.app import STANDIN_PREFIX
from bot.codes import Code
from bot.config.payments import uses_standin
from bot.forms.base import Invalid
from bot.money.merchant import NotifyRefused, PayError
from bot.money.payviews import unix
from handlers.standins.wechatpay import WeChatPayStandIn
from handlers.standins.wechatpay_wire import load_public_key
from handlers.web.base import BaseHandler
from handlers.web.dev import DevHandler
from handlers.web.oauth import in_wechat, login_redirect

log = logging.getLogger("gift_bot.payments")

TOKEN = r"([^/]{1,128})"
SANDBOX_REFUND_SECONDS = 3.0  # the sandbox's WeChat Pay settles a refund this long after it


def routes(services) -> list:
    """The pay routes; in the sandbox without merchant keys, WeChat Pay's stand-in too."""
    table = [
        (r"/pay/notify", PayNotify),
        (rf"/pay/{TOKEN}", PayPage),
        (rf"/pay/{TOKEN}/order", PayOrderHandler),
        (rf"/pay/{TOKEN}/state", PayState),
    ]
    if uses_standin(services.config):
        standin = standin_for(services)
        table += [(rf"/pay/{TOKEN}/simulate", PaySimulate, {"standin": standin})]
        table += standin.routes(STANDIN_PREFIX)
    return table


def standin_for(services) -> WeChatPayStandIn:
    """WeChat Pay's stand-in with its own key pair, trusted by this bot's merchant."""
    merchant = services.pay.merchant
    standin = WeChatPayStandIn(
        mchid=merchant.mchid,
        appid=merchant.appid,
        merchant_public_key=merchant.private_key.public_key(),
        merchant_serial_no=merchant.serial_no,
        api_v3_key=merchant.api_v3_key,
        clock=lambda: unix(services.clock()),
        settle_refunds_after=SANDBOX_REFUND_SECONDS,
    )
    merchant.public_key = load_public_key(standin.platform_public_key_pem)
    merchant.public_key_id = standin.public_key_id
    return standin


class PayPage(BaseHandler):
    """The giver's page: what is bought, for how much, and the pay button."""

    async def get(self, token: str) -> None:
        view = await self.services.pay.page(token, self.current_user, in_wechat(self.request))
        if view is None:
            raise tornado.web.HTTPError(404)
        if view.login:
            return login_redirect(self, self.request.uri)
        status = 403 if view.refusal == Code.PAY_NOT_GIVER else 200
        self.render_page(
            "pages/pay.html", status=status, view=view, amount=view.amount,
            standin=uses_standin(self.services.config),
            waiting=bool(self.get_query_argument("paying", "")),
        )  # fmt: skip


class PayState(BaseHandler):
    """What the pay page waits for after paying: the share's state, for its giver only."""

    async def get(self, token: str) -> None:
        state = await self.services.pay.state(token, self.current_user)
        if state is None:
            raise tornado.web.HTTPError(404)
        self.finish(state)


class PayOrderHandler(BaseHandler):
    """One attempt to pay: a new out_trade_no, its JSAPI order, the signed bridge arguments."""

    async def post(self, token: str) -> None:
        if not self.current_user:
            raise tornado.web.HTTPError(403, "who is paying is unknown")
        try:
            attempt = await self.services.pay.attempt(token, self.current_user)
        except Invalid as refused:
            if refused.code == Code.SHARE_UNKNOWN:
                raise tornado.web.HTTPError(404) from None
            self.set_status(403 if refused.code == Code.PAY_NOT_GIVER else 409)
            return self.finish({"error": self.services.renderer.error(refused)})
        except PayError as exc:
            log.warning("pay order refused", extra={"error": str(exc)})
            self.set_status(502)
            return self.finish({"error": self.services.renderer.reason(Code.PAY_UNAVAILABLE)})
        self.finish({"bridge": attempt.bridge})


class PayNotify(BaseHandler):
    """WeChat Pay's notifications: believed only when signed, current and decryptable."""

    def check_xsrf_cookie(self) -> None:
        """WeChat Pay proves itself with its signature, not a cookie."""

    async def post(self) -> None:
        try:
            status = await self.services.pay.notify(self.request.headers, self.request.body)
        except NotifyRefused as refused:
            self.refusal = refused.reason  # log_request adds it to its line
            self.set_status(refused.status)
            return self.finish({"code": "FAIL", "message": "失败"})
        self.set_status(status)
        self.finish()


class PaySimulate(DevHandler):
    """The sandbox's 模拟支付成功: the stand-in takes the payment of a fresh attempt."""

    def initialize(self, standin: WeChatPayStandIn) -> None:
        self.standin = standin

    async def post(self, token: str) -> None:
        if not self.current_user:
            raise tornado.web.HTTPError(403, "who is paying is unknown")
        try:
            attempt = await self.services.pay.attempt(token, self.current_user)
        except (Invalid, PayError):
            return self.redirect(f"/pay/{token}", status=303)
        self.standin.pay(attempt.out_trade_no)
        self.standin.start_sender()  # sends it, and retries as WeChat Pay would
        self.redirect(f"/pay/{token}?paying=1", status=303)  # the page waits for it
