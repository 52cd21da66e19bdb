"""Every word comes from a template: each step's prompt, each error code the code can raise,
each page; and docs/flows.md is the diagram the forms draw of themselves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.chat.flows import document, mermaid
from bot.codes import Code
from bot.forms.draw import DrawForm
from bot.forms.order import OrderForm
from bot.forms.share import ShareForm

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
SOURCES = [*ROOT.glob("bot/**/*.py"), *ROOT.glob("handlers/**/*.py")]
FLOW_TEMPLATES = ("intro", "summary", "cancelled", "first_step")


@pytest.mark.parametrize("form", [ShareForm, DrawForm, OrderForm], ids=lambda f: f.name)
def test_every_step_of_every_flow_has_its_templates(form):
    for field in form.fields:
        assert (TEMPLATES / field.ask).is_file(), f"missing prompt {field.ask}"
    for name in FLOW_TEMPLATES:
        assert (TEMPLATES / form.name / f"{name}.txt").is_file()


def test_every_error_code_has_its_template_and_every_template_its_code():
    missing = sorted(code for code in Code if not (TEMPLATES / "errors" / f"{code}.txt").is_file())
    assert missing == []
    orphans = {p.stem for p in (TEMPLATES / "errors").glob("*.txt")} - set(Code)
    assert orphans == set()


def test_every_template_the_handlers_name_exists():
    named = set()
    for path in SOURCES:
        named |= set(
            re.findall(
                r'"((?:chat|flow|pages|sms|notices|share|order)/[a-z_]+\.(?:txt|html))"',
                path.read_text(),
            )
        )
    assert named, "the pattern found nothing: it is out of date"
    assert sorted(n for n in named if not (TEMPLATES / n).is_file()) == []


def test_no_code_is_written_as_a_bare_string():
    """Invalid("…") or Ended("…") would escape the enum (and this file's template check)."""
    bare = [
        (path.name, match)
        for path in SOURCES
        for match in re.findall(r'(?:Invalid|Ended)\(\s*"([a-z_]+)"', path.read_text())
    ]
    assert bare == []


def test_docs_flows_md_is_drawn_from_the_code_and_current():
    assert (ROOT / "docs" / "flows.md").read_text(encoding="utf-8") == document()
    assert "stateDiagram-v2" in mermaid()


def test_an_order_number_on_a_page_is_kept_on_one_line_and_plain_in_chat():
    from types import SimpleNamespace

    from bot.config import load
    from bot.render import Renderer

    renderer = Renderer(load(ROOT / "config.example.toml"))
    order = SimpleNamespace(order_no="G261202-7UQ9P")
    page = renderer.page_reason("already_claimed", order=order)
    assert '<span class="nowrap">G261202-7UQ9P</span>' in page
    chat = renderer.reason("already_claimed", order=order)
    assert "订单号 G261202-7UQ9P。" in chat and "<span" not in chat
