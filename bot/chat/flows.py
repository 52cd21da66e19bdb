"""The two chat flows, declared as data on one engine.

    share (giver, S11):      送 (or 惊喜) → quantity → blessing → summary → 确认 → the share card
    draw (giver):            抽奖 → winners → blessing → draw_at → summary → 确认 → the card
    order (recipient, S14):  领取 <token> → [swap, after 换] → [variant] → name → phone
                             → address → delivery → summary → 确认 → the order, its SMS and
                             the giver's notice

The moves in every flow are the table in bot/chat/moves.py; a command (bot/words.py) pauses
the form until 继续.
"""

from __future__ import annotations

import datetime as dt

from bot.chat.conversation import Ended, Flow, State
from bot.chat.engine import GREETING
from bot.chat.moves import MOVES
from bot.codes import ENDS_A_CLAIM, Code
from bot.config import Config
from bot.forms.base import Form, Invalid
from bot.forms.draw import DrawForm, draw_time
from bot.forms.order import OrderAnswers, OrderForm
from bot.forms.share import ShareForm, share_refusal
from bot.gifting import cards, catalogue, life, media, orders, shares, swap
from bot.money import payments
from bot.outgoing.notices import Notices
from bot.render import Renderer
from bot.replies import Reply, Text
from bot.words import COMMAND_WORDS, WORD_MEANS, Command, Move, Word, said


def _naive(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(tzinfo=None)


def build_flows(config: Config, renderer: Renderer, notices: Notices) -> list[Flow]:
    def gift_subject(state: State, now: dt.datetime) -> dict:
        gift = catalogue.get(state.context["gift_id"])
        if gift is None:
            raise Ended(Code.GIFT_RETIRED)
        allowance = shares.LazyAllowance(config, state.openid, _naive(now))
        subject = {"gift": gift, "allowance": allowance, "kind": state.context.get("kind", "gift")}
        # Every step: the gift still there; the giver's limits when the dialogue starts (the
        # quantity and 确认 check them again, and the share's transaction last of all).
        refusal = share_refusal(subject) if state.step is None else share_refusal(subject, False)
        if refusal:
            raise Ended(refusal.code, **refusal.params)
        return subject

    def create_share(state: State, form: Form) -> Reply:
        answers = state.answers  # a draw's units are its winners (bot/forms/draw.py)
        draw_at = answers.get("draw_at")
        # wechatpay mode: the giver buys it first, and the card comes once it is paid
        create = payments.create_unpaid if config.payments.paid else shares.create
        share = create(
            config,
            state.openid,
            state.context["gift_id"],
            answers.get("quantity") or answers["winners"],
            answers["blessing"],
            _naive(form.ctx.now),
            kind=state.context.get("kind", "gift"),
            draw_at=draw_time(draw_at) if draw_at else None,
            variant=answers.get("wrapped_variant") or "",
            theme=answers.get("theme") or "",
        )
        share.gift = form.ctx.subject["gift"]
        media.attach(share, answers.get(GREETING))  # fetched in the background, once made
        if share.payment == life.UNPAID:
            url = f"{config.server.public_url}/pay/{share.token}"
            return Text(renderer.text("share/pay_link.txt", share=share, gift=share.gift, url=url))
        return cards.share_card(config, renderer, share)

    def share_subject(state: State, now: dt.datetime) -> dict:
        token = state.context["token"]
        share = state.read.pop("share", None)  # the claim's first message read it already
        if share is None or share.token != token:
            share = shares.by_token(token)
        if share is None:
            raise Ended(Code.SHARE_UNKNOWN)
        offered = swap.choices(config, share)  # the cached catalogue: no query
        chosen = state.answers.get("swap")
        taken = next((g for g in offered if g.id == chosen), None) or (
            catalogue.get(chosen) if chosen else None  # gone since: 确认 says so (check_swap)
        )
        swapping = bool(state.context.get("swapping"))
        return orders.form_subject(share, state.hints.get("address"), taken, offered, swapping)

    def place_order(state: State, form: Form) -> Reply:
        answers = OrderAnswers.from_answers(state.answers, config.delivery.timezone)
        try:
            order, created = orders.place(
                notices, state.context["token"], state.openid, answers, "chat",
                _naive(form.ctx.now), state.answers.get("swap") or "",
            )  # fmt: skip
        except Invalid as refused:
            if refused.code in ENDS_A_CLAIM:  # no answer can change these: end the form
                raise Ended(refused.code) from None
            raise
        state.context["last_order"] = order.order_no
        if not created:  # already ordered on the web (or a second 确认): that order stands
            return Text(renderer.text("errors/already_claimed.txt", order=order))
        return Text(renderer.text("order/done.txt", order=order, rows=form.summary(state.answers)))

    return [
        Flow("share", ShareForm, subject=gift_subject, confirm=create_share),
        Flow("draw", DrawForm, subject=gift_subject, confirm=create_share),
        Flow("order", OrderForm, subject=share_subject, confirm=place_order),
    ]


def mermaid(forms: tuple[type[Form], ...] = (ShareForm, DrawForm, OrderForm)) -> str:
    """The flows as a Mermaid state diagram, drawn from the forms and the moves table
    (bot/chat/moves.py); docs/flows.md is made from it, and a test checks it is current."""
    lines = ["stateDiagram-v2"]
    for form in forms:
        steps = [f"{form.name}_{f.name}" for f in form.fields]
        summary = f"{form.name}_summary"
        edges = [("[*]", steps[0], "")]
        edges += [(a, b, "answer") for a, b in zip(steps, [*steps[1:], summary], strict=True)]
        for move, rule in MOVES.items():
            edges += [(a, b, move.value) for a, b in rule.edges(steps, summary)]
        edges += [(f"{form.name}_{f.name}", f"{form.name}_{f.name}", Move.MORE.value)
                  for f in form.fields if f.lists_choices]  # fmt: skip
        lines += [f"    state {form.name} {{"]
        lines += [f"        {a} --> {b}" + (f": {label}" if label else "") for a, b, label in edges]
        lines += [
            "    }",
            f"    {form.name} --> [*]: {Move.CANCEL} or timeout",
            f"    {form.name} --> {form.name}_paused: a command ({', '.join(map(said, Command))})",
            f"    {form.name}_paused --> {form.name}: {Move.RESUME}",
            f"    {form.name}_paused --> [*]: {Move.CANCEL}",
        ]
    return "\n".join(lines) + "\n"


def document() -> str:
    """docs/flows.md: the words the chat understands and the flows, all drawn from the code
    (bot/words.py, bot/chat/moves.py, the form declarations); a test checks the file is current."""
    commands = "\n".join(
        f"| {' / '.join(f'`{w}`' for w in words)} | menu key `{command}` |"
        for command, words in COMMAND_WORDS.items()
    )
    moves = "\n".join(f"| `{move}` | {MOVES[move].means} |" for move in Move)
    browsing = "\n".join(f"| `{word}` | {WORD_MEANS[word]} |" for word in Word)
    return f"""# The chat flows

Generated from the code by `bot.chat.flows.document()` (regenerate with
`.venv/bin/python -c "from bot.chat.flows import document; print(document(), end='')" > docs/flows.md`);
`tests/test_templates.py` fails when this file is out of date.

## Words

Commands work anywhere; a form in progress is paused until `{Move.RESUME}`.

| words | does what the menu key does |
| --- | --- |
{commands}

Moves steer the form in progress (`bot/chat/moves.py`).

| move | |
| --- | --- |
{moves}

While browsing:

| word | |
| --- | --- |
{browsing}

## Flows

The order flow's `swap` step is asked only after `{Move.SWAP}` (when `[shares] swap` allows
one); its `variant` step only for gifts that have variants. `{Word.SURPRISE}`
runs the share flow for a surprise; `{Word.DRAW}` runs the draw flow.

```mermaid
{mermaid()}```
"""
