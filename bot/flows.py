"""The two chat flows, declared as data on one engine.

    share (giver, S11):      送 → quantity → blessing → summary → 确认 → the share card
    order (recipient, S14):  领取 <token> → [variant] → name → phone → address → delivery
                             → summary → 确认 → the order, its SMS and the giver's notice

Moves in every flow: 返回, 修改 <field> (or its number on the summary), 取消,
and a menu word pauses the form until 继续.
"""

from __future__ import annotations

import datetime as dt

from bot import catalogue, orders, shares
from bot.config import Config
from bot.conversation import Ended, Flow, State
from bot.forms.base import Form, Invalid
from bot.forms.order import OrderForm
from bot.forms.share import ShareForm
from bot.notices import Notices
from bot.render import Renderer
from bot.replies import Card, Reply, Text

ENDS_THE_CLAIM = ("share_used_up", "share_expired", "share_unknown", "own_share")


def absolute(config: Config, path: str) -> str:
    return path if path.startswith(("http://", "https://")) else config.server.public_url + path


def claim_url(config: Config, token: str) -> str:
    return f"{config.server.public_url}/claim/{token}"


def share_card(config: Config, renderer: Renderer, share) -> Card:
    gift = share.gift
    return Card(
        title=renderer.text("share/card_title.txt", gift=gift, share=share),
        description=renderer.text("share/card_description.txt", gift=gift, share=share),
        picurl=absolute(config, gift.image),
        url=claim_url(config, share.token),
    )


def _naive(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(tzinfo=None)


def build_flows(config: Config, renderer: Renderer, notices: Notices) -> list[Flow]:
    def gift_subject(state: State, now: dt.datetime) -> dict:
        gift = catalogue.get(state.context["gift_id"])
        if gift is None or not gift.active:
            raise Ended("gift_retired")
        if gift.available < 1:
            raise Ended("out_of_stock", gift=gift.name, left=0)
        allowance = shares.allowance(config, state.openid, _naive(now))
        if refusal := allowance.refusal():
            raise Ended(refusal.code, **refusal.params)
        return {"gift": gift, "allowance": allowance.units}

    def create_share(state: State, form: Form) -> Reply:
        share = shares.create(
            config,
            state.openid,
            state.context["gift_id"],
            state.answers["quantity"],
            state.answers["blessing"],
            _naive(form.ctx.now),
        )
        share.gift = form.ctx.subject["gift"]
        return share_card(config, renderer, share)

    def share_subject(state: State, now: dt.datetime) -> dict:
        context = state.context
        share = shares.by_token(context["token"])
        if share is None:
            raise Ended("share_unknown")
        return {"gift": share.gift, "share": share, "address_hint": context.get("address_hint")}

    def place_order(state: State, form: Form) -> Reply:
        try:
            order, created = orders.place(
                notices, state.context["token"], state.openid, state.answers, "chat",
                _naive(form.ctx.now),
            )  # fmt: skip
        except Invalid as refused:
            if refused.code in ENDS_THE_CLAIM:  # no answer can change these: end the form
                raise Ended(refused.code) from None
            raise
        state.context["last_order"] = order.order_no
        if not created:  # already ordered on the web (or a second 确认): that order stands
            return Text(renderer.text("errors/already_claimed.txt", order=order))
        return Text(renderer.text("order/done.txt", order=order, rows=form.summary(state.answers)))

    return [
        Flow("share", ShareForm, subject=gift_subject, confirm=create_share),
        Flow("order", OrderForm, subject=share_subject, confirm=place_order),
    ]


def mermaid(forms: tuple[type[Form], ...] = (ShareForm, OrderForm)) -> str:
    """The flows as a Mermaid state diagram; docs/flows.md is made from it (and checked)."""
    lines = ["stateDiagram-v2"]
    for form in forms:
        steps = [f"{form.name}_{f.name}" for f in form.fields]
        summary = f"{form.name}_summary"
        lines += [f"    state {form.name} {{", f"        [*] --> {steps[0]}"]
        for here, there in zip(steps, [*steps[1:], summary], strict=True):
            lines += [f"        {here} --> {there}: answer", f"        {there} --> {here}: 返回"]
        lines += [f"        {summary} --> {step}: 修改" for step in steps]
        lines += [f"        {summary} --> [*]: 确认", "    }"]
        lines += [
            f"    {form.name} --> [*]: 取消 or timeout",
            f"    {form.name} --> {form.name}_paused: menu word",
            f"    {form.name}_paused --> {form.name}: 继续",
        ]
    return "\n".join(lines) + "\n"
