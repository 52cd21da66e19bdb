"""The conversation engine: one form at a time per user, its state a database row.

Usage::

    state = load(openid, now, timeout)         # inside the message's transaction
    reply = engine.start(state, "order", {"token": token})
    reply = engine.step(state, "13800138000")  # parse, store, ask the next question
    save(state)                                # compare-and-set on `version`, or Conflict

A flow is a form plus what `确认` does (see `bot/flows.py`). The next question
is computed from the answers (the first required field still empty), never
stored; the row keeps the answers, a `step` for the moves (`summary`, or the
field being edited), the flow's context, and a deadline after which the form
is dropped with nothing held.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import peewee

from bot.config import Config
from bot.forms.base import Field, Form, FormContext, Invalid, small_number
from bot.render import Renderer
from bot.replies import Reply, Text
from storage.db import db, locked
from storage.models import Conversation

SUMMARY = "summary"
CANCEL, BACK, CONFIRM, EDIT, MORE = "取消", "返回", "确认", "修改", "更多"
KEPT_AFTER_A_FORM = ("picked", "last_order")  # the gift being browsed, the order just made
EDIT_RE = re.compile(rf"^{EDIT}\s*(\S+)$")


class Conflict(Exception):
    """Another worker changed this conversation first; handle the message again."""


class Ended(Exception):
    """The flow cannot go on (its gift retired, its share gone); `code` names the template."""

    def __init__(self, code: str, **params: Any):
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass
class State:
    openid: str
    flow: str | None = None
    step: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    paused: bool = False
    version: int = 0
    expires_at: dt.datetime | None = None
    timed_out: bool = False  # the last form expired just now: say so once
    exists: bool = False

    @property
    def active(self) -> bool:
        return self.flow is not None and not self.paused

    def clear(self) -> None:
        self.flow, self.step, self.answers, self.paused = None, None, {}, False
        self.context = {k: v for k, v in self.context.items() if k in KEPT_AFTER_A_FORM}


def load(openid: str, now: dt.datetime, timeout: dt.timedelta) -> State:
    row = locked(Conversation.select().where(Conversation.openid == openid)).first()
    if row is None:
        return State(openid)
    state = State(
        openid, row.flow, row.step, row.answers or {}, row.context or {}, row.paused,
        row.version, row.expires_at, exists=True,
    )  # fmt: skip
    if state.flow and state.expires_at and state.expires_at <= now:
        state.clear()
        state.timed_out = True
    state.expires_at = now + timeout
    return state


def save(state: State, now: dt.datetime) -> None:
    values = {
        "flow": state.flow,
        "step": state.step,
        "answers": state.answers,
        "context": state.context,
        "paused": state.paused,
        "expires_at": state.expires_at,
        "updated_at": now,
        "version": state.version + 1,
    }
    if not state.exists:
        try:
            with db.atomic():  # a savepoint, so PostgreSQL's transaction survives a clash
                Conversation.insert(openid=state.openid, **values).execute()
        except peewee.IntegrityError:
            raise Conflict(state.openid) from None  # a first message racing another
        state.exists = True
    else:
        changed = (
            Conversation.update(**values)
            .where((Conversation.openid == state.openid) & (Conversation.version == state.version))
            .execute()
        )
        if changed != 1:
            raise Conflict(state.openid)
    state.version += 1


@dataclass(frozen=True)
class Flow:
    name: str
    form: type[Form]
    subject: Callable[[State, dt.datetime], dict]  # → FormContext.subject; may raise Ended
    confirm: Callable[[State, Form], Reply]  # the effect of 确认; may raise Invalid or Ended


class Engine:
    def __init__(self, config: Config, renderer: Renderer, flows: list[Flow]):
        self.config = config
        self.renderer = renderer
        self.flows = {f.name: f for f in flows}

    def form(self, state: State, now: dt.datetime) -> Form:
        flow = self.flows[state.flow]
        subject = flow.subject(state, now)
        return flow.form(FormContext(self.config, now.replace(tzinfo=dt.UTC), subject))

    def start(self, state: State, flow: str, context: dict, now: dt.datetime) -> Reply:
        state.clear()
        state.flow, state.context = flow, {**state.context, **context}
        return self._ask_next(state, self.form(state, now), intro=True)

    def resume(self, state: State, now: dt.datetime) -> Reply:
        state.paused = False
        return self._ask_next(state, self.form(state, now), resumed=True)

    def step(self, state: State, text: str, now: dt.datetime) -> Reply:
        """One typed answer or move while a form is active."""
        form = self.form(state, now)
        text = text.strip()
        if text == CANCEL:
            state.clear()
            return self._say(f"{form.name}/cancelled.txt")
        if text == BACK:
            return self._back(state, form)
        if text == CONFIRM:
            if state.step == SUMMARY:
                return self._confirm(state, form)
            # Not an answer: a name or address is never "确认". Finish the edit, or ask again.
            state.context.pop("editing", None)
            return self._ask_next(state, form, unfinished=True)
        target = self._edit_target(state, form, text)
        if target is not None:
            state.step = target.name
            state.context["editing"] = True
            if state.context.pop(f"{target.name}_hint", None):  # a fresh answer, not the old start
                form = self.form(state, now)
            return self._ask(form, target, state)
        if state.step == SUMMARY:
            return self._summary(state, form, hint=True)
        current = form.field(state.step)
        if text == MORE and current.lists_choices:
            return Text(self._prompt(form, current, state, show_all=True))
        return self.answer(state, form, current, text)

    def non_text(self, state: State, kind: str, label: str, now: dt.datetime) -> Reply:
        """A picture, voice, location … during a form: ask for text; a location may start an address."""
        form = self.form(state, now)
        if state.step == SUMMARY:
            return self._summary(state, form, hint=True)
        current = form.field(state.step)
        if kind == "location" and current.takes_location and label:
            state.context[f"{current.name}_hint"] = label
            form = self.form(state, now)  # the hint is part of the form's subject now
            return self._ask(form, current, state)
        return Text(
            self._render("flow/please_type.txt", form, state, field=current)
            + "\n\n"
            + self._prompt(form, current, state)
        )

    def answer(self, state: State, form: Form, current: Field, text: str) -> Reply:
        try:
            state.answers[current.name] = current.parse(text, form.ctx)
        except Invalid as exc:
            parts = [self.renderer.error(exc), self._prompt(form, current, state)]
            return Text("\n\n".join(reversed(parts) if current.lists_choices else parts))
        state.context.pop("editing", None)  # an edit returns to the summary once all is answered
        return self._ask_next(state, form)

    def _edit_target(self, state: State, form: Form, text: str) -> Field | None:
        match = EDIT_RE.match(text)
        wanted = match.group(1) if match else (text if state.step == SUMMARY else None)
        if wanted is None:
            return None
        fields = form.active_fields()
        number = small_number(wanted)
        if number is not None and 1 <= number <= len(fields):
            return fields[number - 1]
        return next((f for f in fields if wanted in (f.label, f.name, *f.aliases)), None)

    def _back(self, state: State, form: Form) -> Reply:
        fields = form.active_fields()
        if state.context.pop("editing", False):
            return self._ask_next(state, form)
        if state.step == SUMMARY:
            previous = fields[-1]
        else:
            index = [f.name for f in fields].index(state.step)
            if index == 0:
                return Text(
                    self._say(f"{form.name}/first_step.txt").content
                    + "\n\n"
                    + self._prompt(form, fields[0], state)
                )
            previous = fields[index - 1]
        state.answers.pop(previous.name, None)
        return self._ask_next(state, form)

    def _confirm(self, state: State, form: Form) -> Reply:
        errors = form.validate(state.answers)  # every answer again: a slot may have passed
        if errors:
            name, error = next(iter(errors.items()))
            if name in state.answers:
                state.answers.pop(name)
            return Text(self.renderer.error(error) + "\n\n" + self._ask_next(state, form).content)
        try:
            reply = self.flows[state.flow].confirm(state, form)
        except Invalid as exc:
            return Text(self.renderer.error(exc) + "\n\n" + self._summary(state, form).content)
        state.clear()
        return reply

    def _ask_next(self, state, form, intro=False, resumed=False, unfinished=False) -> Reply:
        nxt = form.next_field(state.answers)
        if nxt is None:
            return self._summary(state, form, resumed=resumed)
        state.step = nxt.name
        return self._ask(form, nxt, state, intro=intro, resumed=resumed, unfinished=unfinished)

    def _ask(self, form, current, state, intro=False, resumed=False, unfinished=False) -> Text:
        parts = []
        if intro:
            parts.append(
                self._render(f"{form.name}/intro.txt", form, state, fields=form.active_fields())
            )
        if resumed:
            parts.append(self._render("flow/resumed.txt", form, state))
        if unfinished:
            parts.append(self._render("flow/unfinished.txt", form, state))
        parts.append(self._prompt(form, current, state))
        return Text("\n\n".join(p for p in parts if p))

    def _prompt(self, form: Form, current: Field, state: State, show_all: bool = False) -> str:
        fields = form.active_fields()
        return self._render(
            current.ask,
            form,
            state,
            field=current,
            number=fields.index(current) + 1,
            total=len(fields),
            editing=bool(state.context.get("editing")),
            show_all=show_all,
        )

    def _summary(self, state, form, hint=False, resumed=False) -> Text:
        state.step = SUMMARY
        return Text(
            self._render(
                f"{form.name}/summary.txt",
                form,
                state,
                rows=form.summary(state.answers),
                hint=hint,
                resumed=resumed,
            )  # fmt: skip
        )

    def _render(self, template: str, form: Form, state: State, **extra) -> str:
        return self.renderer.text(
            template, subject=form.ctx.subject, answers=state.answers, ctx=form.ctx, **extra
        )

    def _say(self, template: str, **params) -> Text:
        return Text(self.renderer.text(template, **params))
