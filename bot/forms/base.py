"""Forms declared once, run by the chat (one field per message) and the web (all at once).

Usage::

    form = OrderForm(ctx)                         # ctx: FormContext
    value = form.field("phone").parse("+86 138-0013-8000", ctx)   # or raises Invalid
    errors = form.validate(answers)               # {} when every answer still holds
    form.next_field(answers)                      # first required field still empty

A field turns the text a person typed into a canonical, JSON-able value, or
raises `Invalid(code, **params)`; the code names `templates/errors/<code>.txt`,
so every reason a person reads lives in a template. `check` re-validates a
stored value (a delivery slot may have passed since it was chosen).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.codes import Code
from bot.config import Config


class Invalid(Exception):
    """A value was refused; `code` names the template that says why."""

    def __init__(self, code: Code, **params: Any):
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class FormContext:
    """What a form's fields may look at: the config, the time, and the form's subject."""

    config: Config
    now: dt.datetime  # aware
    subject: dict[str, Any] = field(default_factory=dict)  # e.g. {"gift": Gift, "variants": [...]}


class Given:
    """The values a pure parse gave in this process (the newest `most`), so that its check of
    a stored value may skip the parse: a value the rules gave, rules that are code and data
    loaded at start, holds until the process ends. A stored value from before (a restart, an
    upgrade, another worker) is parsed again.

    Usage::

        _GIVEN = Given()
        return _GIVEN.add(value, key)        # in the parse: the value, remembered by key
        if key in _GIVEN: return value       # in the check
    """

    def __init__(self, most: int = 10_000):
        self.most = most
        self._keys: dict[Any, None] = {}

    def add(self, value: Any, key: Any) -> Any:
        self._keys.pop(key, None)
        self._keys[key] = None
        if len(self._keys) > self.most:
            del self._keys[next(iter(self._keys))]
        return value

    def __contains__(self, key: Any) -> bool:
        return key in self._keys


def _always(ctx: FormContext) -> bool:
    return True


def _same(value: Any, ctx: FormContext) -> Any:
    return value


@dataclass(frozen=True)
class Field:
    name: str  # the key in answers and in the web form
    label: str  # the word a person reads: 姓名, 手机 ...
    parse: Callable[[str, FormContext], Any]
    check: Callable[[Any, FormContext], Any] = _same
    show: Callable[[Any, FormContext], str] = lambda value, ctx: str(value)
    required: Callable[[FormContext], bool] = _always
    example: str = ""
    takes_location: bool = False  # a WeChat location message can start this field's answer
    # The prompt is a long list (delivery slots): on a phone only a message's end is on screen,
    # so a refusal's reason goes after it; the chat shows a short list until asked for 更多.
    lists_choices: bool = False
    aliases: tuple[str, ...] = ()  # other words people use for it: 修改 电话
    # Its answer changes what the form is about (the gift taken instead): the subject, and so
    # the fields after it, are computed again once it is answered.
    reshapes: bool = False
    takes_media: bool = False  # a picture or a voice message is kept with its answer

    @property
    def ask(self) -> str:
        """The prompt template, by naming rule."""
        return f"ask/{self.name}.txt"


class Form:
    """A list of fields plus `clean()` across them; subclasses declare `fields`."""

    name: str = ""
    fields: tuple[Field, ...] = ()

    def __init__(self, ctx: FormContext):
        self.ctx = ctx

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def active_fields(self) -> list[Field]:
        return [f for f in self.fields if f.required(self.ctx)]

    def next_field(self, answers: dict[str, Any]) -> Field | None:
        """Computed, never stored: the first required field still empty."""
        return next((f for f in self.active_fields() if answers.get(f.name) is None), None)

    def parse_all(self, texts: dict[str, str]) -> tuple[dict[str, Any], dict[str, Invalid]]:
        """Parse every field from typed text (the web form); returns (values, errors by field)."""
        values, errors = {}, {}
        for f in self.active_fields():
            try:
                values[f.name] = f.parse(texts.get(f.name, "") or "", self.ctx)
            except Invalid as exc:
                errors[f.name] = exc
        if not errors:
            errors.update(self._clean(values))
        return values, errors

    def validate(self, answers: dict[str, Any]) -> dict[str, Invalid]:
        """Re-check every stored answer and the rules across them; {} when all still hold."""
        errors = {}
        for f in self.active_fields():
            if answers.get(f.name) is None:
                errors[f.name] = Invalid(Code.REQUIRED, label=f.label)
                continue
            try:
                answers[f.name] = f.check(answers[f.name], self.ctx)
            except Invalid as exc:
                errors[f.name] = exc
        if not errors:
            errors.update(self._clean(answers))
        return errors

    def summary(self, answers: dict[str, Any]) -> list[tuple[Field, str]]:
        return [(f, f.show(answers[f.name], self.ctx)) for f in self.active_fields()]

    def _clean(self, values: dict[str, Any]) -> dict[str, Invalid]:
        try:
            self.clean(values)
        except Invalid as exc:
            return {exc.params.get("field", "__all__"): exc}
        return {}

    def clean(self, values: dict[str, Any]) -> None:
        """Rules across fields; raise Invalid(code, field=name) to blame one."""
