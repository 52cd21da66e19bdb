"""A user's conversation: at most one form at a time, its state a database row.

Usage::

    state = load(openid, now, timeout)         # inside the message's transaction
    ...                                        # bot/chat/engine.py reads and changes it
    save(state, now)                           # compare-and-set on `version`, or Conflict

The row keeps the flow and its context (what it is about: the gift, the share), the
answers, the `step` being asked (a field's name, or `summary`), whether the step is an
edit from the summary (`editing`), places a location message gave (`hints`), whether a
command paused the form, and a deadline after which the form is dropped with nothing
held. Two workers handling the same user's messages meet at the `version` column: the
second gets Conflict and handles its message again from the new state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import peewee

from bot.codes import Code
from bot.forms.base import Form
from bot.replies import Reply
from storage import hot
from storage.db import db
from storage.models.base import Encoded, to_json
from storage.runner import Retry

SUMMARY = "summary"
KEPT_AFTER_A_FORM = ("picked", "last_order")  # the gift being browsed, the order just made


class Conflict(Retry):
    """Another worker changed this conversation first; the message is handled again (the
    database runner rolls its work back and runs it anew)."""


class Ended(Exception):
    """The flow cannot go on (its gift retired, its share gone); `code` names the template."""

    def __init__(self, code: Code, **params: Any):
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
    editing: bool = False  # the step was chosen from the summary: answering returns there
    hints: dict[str, str] = field(default_factory=dict)  # field → place a location message gave
    paused: bool = False
    version: int = 0
    expires_at: dt.datetime | None = None
    timed_out: bool = False  # the last form expired just now: say so once
    exists: bool = False
    loaded: tuple | None = None  # what the row held (None: no row)
    read: dict[str, Any] = field(default_factory=dict)  # what this message read (never kept)

    @property
    def active(self) -> bool:
        return self.flow is not None and not self.paused

    def clear(self) -> None:
        self.flow, self.step, self.answers, self.paused = None, None, {}, False
        self.editing, self.hints = False, {}
        self.context = {k: v for k, v in self.context.items() if k in KEPT_AFTER_A_FORM}


@dataclass(frozen=True)
class Flow:
    name: str
    form: type[Form]
    subject: Callable[[State, dt.datetime], dict]  # → FormContext.subject; may raise Ended
    confirm: Callable[[State, Form], Reply]  # the effect of 确认; may raise Invalid or Ended


def load(openid: str, now: dt.datetime, timeout: dt.timedelta, row: Any = ...) -> State:
    """The user's state; `row`: the conversation row read already (hot.open_message), or None."""
    if row is ...:
        row = hot.conversation_row(openid)  # locked on PostgreSQL until the message commits
    if row is None:
        state = State(openid)
    else:
        state = State(
            openid, row["flow"], row["step"], row["answers"] or {}, row["context"] or {},
            row["editing"], row["hints"] or {}, row["paused"], row["version"], row["expires_at"],
            exists=True,
        )  # fmt: skip
        stored = row["stored"]
        state.loaded = (
            state.flow, state.step, stored["answers"], stored["context"], state.editing,
            stored["hints"], state.paused, state.expires_at if state.flow else None,
        )  # fmt: skip
    if state.flow and state.expires_at and state.expires_at <= now:
        state.clear()
        state.timed_out = True
    state.expires_at = now + timeout
    return state


def save(state: State, now: dt.datetime) -> None:
    """Write the state back, compare-and-set on `version`; nothing to write, nothing written
    (a message that only browsed leaves no form and no change behind)."""
    if state.flow is None and not state.exists and _untouched(state):
        return  # a first message that started nothing: no row needed yet
    kept = _kept(state)
    if state.flow is None and kept == (state.loaded or _EMPTY):
        return
    # The JSON columns as _kept wrote them already (Encoded): not written a second time.
    values = dict(zip(_KEPT, kept, strict=True))
    values |= {"expires_at": state.expires_at, "updated_at": now, "version": state.version + 1}
    if not state.exists:
        try:
            with db.atomic():  # a savepoint, so PostgreSQL's transaction survives a clash
                hot.insert_conversation(state.openid, values)
        except peewee.IntegrityError:
            raise Conflict(state.openid) from None  # a first message racing another
        state.exists = True
    elif hot.update_conversation(state.openid, state.version, values) != 1:
        raise Conflict(state.openid)
    state.version += 1
    state.loaded = kept


_KEPT = ("flow", "step", "answers", "context", "editing", "hints", "paused", "expires_at")


def _kept(state: State) -> tuple:
    """What a conversation row keeps of the state, as a snapshot (later changes to the
    state's dicts do not reach it), to tell whether anything changed."""
    return (
        state.flow, state.step, _frozen(state.answers), _frozen(state.context), state.editing,
        _frozen(state.hints), state.paused, state.expires_at if state.flow else None,
    )  # fmt: skip


def _frozen(value: dict) -> Encoded:
    """A dict as a JSON column keeps it (storage.models.JSONField), to compare with the row
    and to write."""
    return Encoded(to_json(value))


def _untouched(state: State) -> bool:
    return not (state.context or state.answers or state.hints or state.paused or state.step)


_EMPTY = _kept(State(""))
