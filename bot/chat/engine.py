"""The conversation engine: a form asked one field per message, the moves as a table.

Usage::

    engine = Engine(config, renderer, flows)       # flows: bot/chat/flows.py
    reply = engine.start(state, "order", {"token": token}, now)
    reply = engine.step(state, "13800138000", now)  # a move, or the answer to the step
    reply = engine.non_text(state, "location", "深圳湾公园", now)
    reply = engine.non_text(state, "image", "", now, media=("picture", {"media_id": …}))

The next question is computed from the answers (the first required field still empty),
never stored. A typed move is looked up in `bot.chat.moves.MOVES`; anything else answers the
step: parsed by the field, kept, and the next question asked, or asked again with the
reason. `确认` re-validates every answer before the flow's deed (a slot may have passed).
A picture or voice sent while a field that takes one is asked (the blessing), or on the
summary after it, is kept in the answers under GREETING (a voice's words answer the field).
"""

from __future__ import annotations

import datetime as dt

from bot.chat.conversation import SUMMARY, Flow, State
from bot.chat.moves import MOVES
from bot.config import Config
from bot.forms.base import Field, Form, FormContext, Invalid
from bot.render import Renderer
from bot.replies import Reply, Text
from bot.words import Move, move_of, normalize

GREETING = "greeting"  # the answers' key of a picture and a voice kept: {kind: media}
Media = tuple[str, dict]  # ("picture" | "voice", what bot/gifting/media.py keeps of it)


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
        return self.ask_next(state, self.form(state, now), intro=True)

    def step(
        self, state: State, text: str, now: dt.datetime, media: Media | None = None
    ) -> Reply | None:
        """One message while a form is in progress; None when it is not for the form (a
        paused form takes only the moves that work while paused). A voice's words (`media`)
        answering a field that takes media keep the voice too."""
        typed = move_of(text)
        rule = MOVES.get(typed[0]) if typed else None
        if state.paused and not (rule and rule.paused):
            return None
        if rule and (reply := rule.act(self, state, now, typed[1])) is not None:
            return reply
        if state.step == SUMMARY:  # a number or a field's name edits it; anything else: how
            reply = MOVES[Move.EDIT].act(self, state, now, normalize(text))
            return reply or self.summary(state, self.form(state, now), hint=True)
        form = self.form(state, now)
        current = form.field(state.step)
        if media and current.takes_media:
            state.answers.setdefault(GREETING, {})[media[0]] = media[1]
        return self.answer(state, form, current, text)

    def non_text(
        self, state: State, kind: str, label: str, now: dt.datetime, media: Media | None = None
    ) -> Reply:
        """A picture, voice, location … during a form: ask for text; a location may start
        the field that takes one (the address); a picture or voice is kept by the field that
        takes one (the blessing), asked or on the summary after it."""
        form = self.form(state, now)
        taker = next((f for f in form.active_fields() if f.takes_media), None)
        if media and taker and state.step in (taker.name, SUMMARY):
            state.answers.setdefault(GREETING, {})[media[0]] = media[1]
            kept = self._render("flow/media_kept.txt", form, state, kind=media[0])
            if state.step == SUMMARY:
                return Text(kept + "\n\n" + self.summary(state, form).content)
            return Text(kept + "\n\n" + self.prompt(form, taker, state))
        if state.step == SUMMARY:
            return self.summary(state, form, hint=True)
        current = form.field(state.step)
        if kind == "location" and current.takes_location and label:
            state.hints[current.name] = label
            return self.ask(self.form(state, now), current, state)  # the hint is in its subject
        please = self._render("flow/please_type.txt", form, state, field=current)
        return Text(please + "\n\n" + self.prompt(form, current, state))

    def answer(self, state: State, form: Form, current: Field, text: str) -> Reply:
        try:
            state.answers[current.name] = current.parse(text, form.ctx)
        except Invalid as exc:
            parts = [self.renderer.error(exc), self.prompt(form, current, state)]
            return Text("\n\n".join(reversed(parts) if current.lists_choices else parts))
        state.editing = False  # an edit returns to the summary once all is answered
        if current.reshapes:
            form = self.form(state, form.ctx.now)
        return self.ask_next(state, form)

    def confirm(self, state: State, form: Form) -> Reply:
        errors = form.validate(state.answers)  # every answer again: a slot may have passed
        if errors:
            name, error = next(iter(errors.items()))
            state.answers.pop(name, None)
            return Text(self.renderer.error(error) + "\n\n" + self.ask_next(state, form).content)
        try:
            reply = self.flows[state.flow].confirm(state, form)
        except Invalid as exc:
            return Text(self.renderer.error(exc) + "\n\n" + self.summary(state, form).content)
        state.clear()
        return reply

    # -- what the engine says ------------------------------------------------------

    def ask_next(self, state, form, intro=False, resumed=False, unfinished=False) -> Text:
        nxt = form.next_field(state.answers)
        if nxt is None:
            return self.summary(state, form, resumed=resumed)
        state.step = nxt.name
        return self.ask(form, nxt, state, intro=intro, resumed=resumed, unfinished=unfinished)

    def ask(self, form, current, state, intro=False, resumed=False, unfinished=False) -> Text:
        parts = []
        if intro:
            parts.append(
                self._render(f"{form.name}/intro.txt", form, state, fields=form.active_fields())
            )
        if resumed:
            parts.append(self._render("flow/resumed.txt", form, state))
        if unfinished:
            parts.append(self._render("flow/unfinished.txt", form, state))
        parts.append(self.prompt(form, current, state))
        return Text("\n\n".join(p for p in parts if p))

    def prompt(self, form: Form, current: Field, state: State, show_all: bool = False) -> str:
        fields = form.active_fields()
        return self._render(
            current.ask, form, state, field=current, number=fields.index(current) + 1,
            total=len(fields), editing=state.editing, show_all=show_all,
        )  # fmt: skip

    def summary(self, state, form, hint=False, resumed=False) -> Text:
        state.step = SUMMARY
        rows = form.summary(state.answers)
        return Text(
            self._render(
                f"{form.name}/summary.txt", form, state, rows=rows, hint=hint, resumed=resumed
            )
        )

    def say(self, template: str, **params) -> Text:
        return Text(self.renderer.text(template, **params))

    def _render(self, template: str, form: Form, state: State, **extra) -> str:
        return self.renderer.text(
            template, subject=form.ctx.subject, answers=state.answers, ctx=form.ctx, **extra
        )
