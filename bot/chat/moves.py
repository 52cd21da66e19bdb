"""The moves a person makes inside a form, as one table: the engine dispatches it, the flow
diagram (docs/flows.md) draws it.

Usage::

    rule = MOVES[Move.BACK]
    reply = rule.act(engine, state, now, arg)      # None: not a move here, read it as an answer
    rule.edges(["share_quantity", "share_blessing"], "share_summary")   # for the diagram

Each act is a short function over the engine's state; `paused` says whether the move also
works while a command has paused the form (继续 and 取消 do; the others wait until 继续).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.chat.conversation import SUMMARY, Flow, State
from bot.codes import Code
from bot.config import Config
from bot.forms.base import Field, Form
from bot.forms.numbers import small_number
from bot.replies import Reply, Text
from bot.words import Move


class Engine(Protocol):
    """What a move may ask of the engine that dispatches it (bot/chat/engine.py)."""

    flows: dict[str, Flow]
    config: Config

    def form(self, state: State, now: dt.datetime) -> Form: ...
    def confirm(self, state: State, form: Form) -> Reply: ...
    def ask_next(self, state, form, intro=False, resumed=False, unfinished=False) -> Text: ...
    def ask(self, form, current, state, intro=False, resumed=False, unfinished=False) -> Text: ...
    def prompt(self, form: Form, current: Field, state: State, show_all: bool = False) -> str: ...
    def say(self, template: str, **params) -> Text: ...


Act = Callable[[Engine, State, dt.datetime, str], Reply | None]
Edges = Callable[[list[str], str], list[tuple[str, str]]]  # (steps, summary) → (from, to)


@dataclass(frozen=True)
class MoveRule:
    act: Act
    edges: Edges
    means: str  # for docs/flows.md
    paused: bool = False  # also while the form is paused


def confirm(engine: Engine, state: State, now: dt.datetime, arg: str) -> Reply:
    """确认 on the summary does the flow's deed; on a step it is not an answer: ask again."""
    form = engine.form(state, now)
    if state.step == SUMMARY:
        return engine.confirm(state, form)
    state.editing = False  # a name or address is never "确认": finish the edit, or ask again
    return engine.ask_next(state, form, unfinished=True)


def back(engine: Engine, state: State, now: dt.datetime, arg: str) -> Reply:
    """返回: one step back (its answer forgotten); from an edit, back to the summary."""
    form = engine.form(state, now)
    if state.editing:
        state.editing = False
        return engine.ask_next(state, form)
    fields = form.active_fields()
    if state.step == SUMMARY:
        previous = fields[-1]
    else:
        index = [f.name for f in fields].index(state.step)
        if index == 0:
            first = engine.say(f"{form.name}/first_step.txt").content
            return Text(first + "\n\n" + engine.prompt(form, fields[0], state))
        previous = fields[index - 1]
    state.answers.pop(previous.name, None)
    return engine.ask_next(state, form)


def edit(engine: Engine, state: State, now: dt.datetime, arg: str) -> Reply | None:
    """修改 <field> (its label, an alias or its number): ask that field again, then the summary."""
    target = field_named(engine.form(state, now), arg)
    if target is None:
        return None
    state.step, state.editing = target.name, True
    state.hints.pop(target.name, None)  # a fresh answer, not the old place
    return engine.ask(engine.form(state, now), target, state)


def cancel(engine: Engine, state: State, now: dt.datetime, arg: str) -> Reply:
    """取消: drop the form and all its answers (without asking its subject: it may be gone)."""
    paused, form = state.paused, engine.flows[state.flow].form
    state.clear()
    return engine.say("flow/cancelled_paused.txt" if paused else f"{form.name}/cancelled.txt")


def resume(engine: Engine, state: State, now: dt.datetime, arg: str) -> Reply:
    """继续: the paused form's next question, where it was left."""
    state.paused = False
    return engine.ask_next(state, engine.form(state, now), resumed=True)


def more(engine: Engine, state: State, now: dt.datetime, arg: str) -> Reply | None:
    """更多: the whole list where a step shows a short one (delivery slots)."""
    form = engine.form(state, now)
    current = form.field(state.step) if state.step != SUMMARY else None
    if current is None or not current.lists_choices:
        return None
    return Text(engine.prompt(form, current, state, show_all=True))


def swap(engine: Engine, state: State, now: dt.datetime, arg: str) -> Reply | None:
    """换 during a claim: the gifts to take instead, by number ([shares] swap); the variant of
    the gift given is asked again for the gift taken. Elsewhere it is an answer like any."""
    if state.flow != "order" or engine.config.shares.swap == "off":
        return None
    state.context["swapping"] = True
    state.answers.pop("swap", None)
    state.answers.pop("variant", None)
    state.editing = False
    form = engine.form(state, now)
    if not form.ctx.subject["choices"]:
        state.context.pop("swapping")
        return Text(engine.say(f"errors/{Code.SWAP_NONE}.txt").content + "\n\n"
                    + engine.ask_next(state, engine.form(state, now)).content)  # fmt: skip
    state.step = "swap"
    return engine.ask(form, form.field("swap"), state)


def field_named(form: Form, wanted: str) -> Field | None:
    fields = form.active_fields()
    number = small_number(wanted)
    if number is not None:
        return fields[number - 1] if 1 <= number <= len(fields) else None
    return next((f for f in fields if wanted in (f.label, f.name, *f.aliases)), None)


MOVES: dict[Move, MoveRule] = {
    Move.CONFIRM: MoveRule(
        confirm,
        lambda steps, summary: [(summary, "[*]")],
        "on the summary: every answer checked again, then the flow's deed",
    ),
    Move.BACK: MoveRule(
        back,
        lambda steps, summary: list(zip([*steps[1:], summary], steps, strict=True)),
        "one step back, its answer forgotten; from an edit, back to the summary",
    ),
    Move.EDIT: MoveRule(
        edit,
        lambda steps, summary: [(summary, step) for step in steps],
        "`修改 <field>` (or the field's number on the summary): ask it again, then the summary",
    ),
    Move.MORE: MoveRule(
        more, lambda steps, summary: [], "the whole list where a step shows a short one"
    ),  # drawn on the step that lists
    Move.SWAP: MoveRule(
        swap,
        lambda steps, summary: (
            [(step, steps[0]) for step in [*steps[1:], summary]]
            if steps[0].endswith("_swap")
            else []
        ),
        "during a claim, when `[shares] swap` allows: the gifts to take instead, by number",
    ),
    Move.CANCEL: MoveRule(
        cancel, lambda steps, summary: [], "drop the form and its answers", paused=True
    ),  # drawn per flow
    Move.RESUME: MoveRule(
        resume, lambda steps, summary: [], "back to a paused form, where it was left", paused=True
    ),
}
