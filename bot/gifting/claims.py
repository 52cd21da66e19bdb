"""The recipient's pages in the domain's words (S12–S14): what the gift page shows, the order
form, its submit, the confirmation. Each page handler awaits one of these and renders it.

Usage::

    view = await claims.page(services, token, openid, in_wechat=True)   # None: no such share
    view.login                                             # unknown visitor: OAuth first
    view.refusal                                           # None, or the Code that says why not
    isinstance(view, StatusView)                           # the giver: bot/gifting/status.py
    swaps = await claims.swaps(services, token, openid)    # SwapView: the gifts to take instead
    form = await claims.form(services, token, openid, "mooncake")   # the form for one of them
    result = await claims.submit(services, token, openid, texts)    # texts["swap"]: that gift
    isinstance(result, Placed)                             # else a FormView with errors, or a
                                                           # ClaimView saying why not (409)
    view.promise                                           # news to come, as it will reach them

Database work runs on the services' runner; the claim QR's URL is asked of WeChat once per
share and kept (none in the sandbox, which has no Official Account behind it, and none
while WeChat's API cannot be reached: the page says so instead).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot import visitors
from bot.codes import Code
from bot.config import Config
from bot.forms.base import Field, FormContext, Invalid
from bot.forms.delivery import Slot, delivery_slots
from bot.forms.order import OrderAnswers, OrderForm
from bot.gifting import (
    cards,
    draws,
    facts,
    life,
    media,
    orders,
    promises,
    reminders,
    shares,
    surprise,
    swap,
)
from bot.gifting.facts import Facts
from bot.gifting.status import StatusView, giver_status
from bot.outgoing.channels import Offer
from bot.outgoing.notices import Notices
from bot.outgoing.outbox import Worker
from bot.outgoing.wechat_api import WeChatApi
from storage.models import Gift, Order, Share
from storage.runner import Runner


class Services(Protocol):
    """What the recipient's pages need of the running bot (bot/app.py's Services)."""

    config: Config
    db: Runner
    notices: Notices
    wechat: WeChatApi
    worker: Worker

    def now(self) -> dt.datetime: ...


log = logging.getLogger("gift_bot.claims")

SWAP_REFUSALS = (Code.SWAP_OFF, Code.SWAP_UNKNOWN, Code.SWAP_GONE)  # said on the form itself


@dataclass
class ClaimView:
    """The gift page of a share, as this visitor sees it."""

    share: Share
    refusal: Code | None = None
    order: Order | None = None  # the visitor's own order for this share
    login: bool = False  # the visitor is not known yet
    qr_ready: bool = False
    draw: Any = None  # a draw's state as this visitor sees it (bot/gifting/draws.py)
    facts: Facts | None = None  # what every page says of the share (bot/gifting/facts.py)
    promise: Offer | None = None  # news to come, as it will reach them (bot/gifting/promises.py)
    greeting: media.Greeting = media.NONE  # the giver's picture and voice, once fetched

    @property
    def closed(self) -> Code | None:
        """Why nobody may claim (a draw: join) this share now, whoever visits."""
        move = life.Move.JOIN if self.facts.state == life.State.DRAWING else life.Move.CLAIM
        return life.RULES[move].refused.get(self.facts.state)

    @property
    def gift(self):
        """A surprise stays wrapped until the visitor's order (the giver sees it)."""
        return surprise.as_seen(self.share, self.order is not None or self.refusal == "own_share")


@dataclass
class FormView:
    share: Share
    fields: list[Field]
    slots: list[Slot]
    values: dict[str, str] = field(default_factory=dict)  # what was typed, kept on errors
    errors: dict[str, Invalid] = field(default_factory=dict)
    fixed_phone: str = ""  # a mobile verified outside WeChat: filled in, not to be changed
    swap: Gift | None = None  # the gift taken instead of the one given
    can_swap: bool = False  # [shares] swap offers gifts to take instead

    @property
    def gift(self):
        return self.swap or surprise.as_seen(self.share)


@dataclass
class SwapView:
    """The gifts this visitor may take instead (each with its picture and price band)."""

    share: Share
    choices: list[Gift]

    @property
    def gift(self):
        return surprise.as_seen(self.share)


@dataclass(frozen=True)
class Placed:
    token: str


async def page(
    services: Services, token: str, openid: str | None, in_wechat: bool = False
) -> ClaimView | StatusView | None:
    """The gift page; `in_wechat`: opened in WeChat's browser (a subscription can be offered)."""
    now, config = services.now(), services.config
    view = await services.db.run(_page_view, config, token, openid, in_wechat, now)
    if view and view.refusal == Code.OWN_SHARE:
        status = await services.db.run(giver_status, view.share, now)
        status.draw = view.draw
        if status.facts.claimable or status.facts.state == life.State.DRAWING:
            status.qr_ready = await cards.qr_url(services, view.share) is not None
        status.promise = await services.db.run(
            promises.on_giver_page, config, view.share, status.facts, openid, in_wechat, now
        )
        return status
    joinable = view and view.draw is not None and view.draw.can_join
    if view and (view.login or view.refusal is None or joinable):
        view.qr_ready = await cards.qr_url(services, view.share) is not None
    if view and openid and view.refusal is None:
        await _remember_visit(services, view.share, openid)
    return view


VISITS_KEPT = 100_000  # visits this process has recorded; then the memory starts afresh
_visited: set[tuple[int, str]] = set()


async def _remember_visit(services: Services, share: Share, openid: str) -> None:
    """A visitor who may claim and has not: they get one reminder before the share expires.
    Recorded once per process (the insert itself ignores a repeat from another process)."""
    if (share.id, openid) in _visited:
        return
    await services.db.write(reminders.record_visit, share, openid, services.now())
    if len(_visited) >= VISITS_KEPT:
        _visited.clear()
    _visited.add((share.id, openid))


async def form(
    services: Services, token: str, openid: str | None, swap_to: str = ""
) -> FormView | ClaimView | None:
    """The empty order form (for the gift `swap_to` instead), or the page that says why not."""
    view = await services.db.run(view_of, token, openid, services.now())
    if view is None or view.login or view.refusal:
        return view
    try:
        taken = swap.choice(services.config, view.share, swap_to) if swap_to else None
    except Invalid as refused:
        view.refusal = refused.code
        return view
    fixed = visitors.mobile_of(openid) or ""
    return _form_view(
        services, view.share, taken, fixed_phone=fixed, values={"phone": fixed} if fixed else {}
    )


async def swaps(services: Services, token: str, openid: str | None) -> SwapView | ClaimView | None:
    """The gifts to take instead, or the page that says why this visitor cannot claim."""
    view = await services.db.run(view_of, token, openid, services.now())
    if view is None or view.login or view.refusal:
        return view
    if not swap.allowed(services.config):
        view.refusal = Code.SWAP_OFF
        return view
    return SwapView(view.share, swap.choices(services.config, view.share))


async def submit(
    services: Services, token: str, openid: str, texts: dict[str, str]
) -> Placed | FormView | ClaimView | None:
    """Check every field; then the one order of this visitor for this share."""
    share = await services.db.run(shares.by_token, token)
    if share is None:
        return None
    swap_to = (texts.get("swap") or "").strip()
    try:
        taken = swap.choice(services.config, share, swap_to) if swap_to else None
    except Invalid as refused:  # gone since the form was drawn: the form again, saying so
        view = _form_view(services, share, fixed_phone=visitors.mobile_of(openid) or "")
        view.values, view.errors = texts, {"__all__": refused}
        return view
    view = _form_view(services, share, taken, fixed_phone=visitors.mobile_of(openid) or "")
    if view.fixed_phone:  # verified outside WeChat: that mobile, whatever the form sent
        texts = {**texts, "phone": view.fixed_phone}
    form = order_form(services, share, swap=taken)
    values, errors = form.parse_all({f.name: texts.get(f.name, "") for f in form.fields})
    if errors:
        view.values, view.errors = texts, errors
        return view
    answers = OrderAnswers.from_answers(values, services.config.delivery.timezone)
    try:
        await services.db.write(
            orders.place, services.notices, share.token, openid, answers, "web", services.now(),
            swap_to,
        )  # fmt: skip
    except Invalid as refused:
        if refused.code in SWAP_REFUSALS:
            view.values, view.errors = texts, {"__all__": refused}
            return view
        view = await services.db.run(view_of, token, openid, services.now())
        view.refusal = refused.code
        return view
    services.worker.wake.set()
    return Placed(share.token)


def order_form(services: Services, share: Share, hint: str | None = None, swap=None) -> OrderForm:
    now = services.now().replace(tzinfo=dt.UTC)
    return OrderForm(FormContext(services.config, now, orders.form_subject(share, hint, swap)))


def _page_view(
    config: Config, token: str, openid: str | None, in_wechat: bool, now: dt.datetime
) -> ClaimView | None:
    """The gift page's view and, for a visitor, the promise it makes: one database job."""
    view = view_of(token, openid, now)
    if view and openid and view.refusal != Code.OWN_SHARE:
        view.promise = promises.on_claim_page(
            config, view.share, view.facts, view.draw, openid, in_wechat, now
        )
    return view


def view_of(token: str, openid: str | None, now: dt.datetime) -> ClaimView | None:
    page = shares.page(token, openid)
    if page is None:
        return None
    share = page.share
    seen, greeting = facts.of(share, now), media.greeting(page.greeting)
    if not openid:
        draw = draws.seen_by(share, None, now) if draws.is_draw(share) else None
        return ClaimView(share, login=True, draw=draw, facts=seen, greeting=greeting)
    order = page.order
    refusal = Code.ALREADY_CLAIMED if order else orders.open_refusal(share, openid, now)
    draw = draws.seen_by(share, openid, now) if draws.is_draw(share) else None
    return ClaimView(share, refusal, order, draw=draw, facts=seen, greeting=greeting)


def _form_view(services: Services, share: Share, taken: Gift | None = None, **kept) -> FormView:
    form = order_form(services, share, swap=taken)
    slots = delivery_slots(services.config.delivery, form.ctx.now)
    can_swap = bool(swap.choices(services.config, share))
    return FormView(share, form.active_fields(), slots, swap=taken, can_swap=can_swap, **kept)
