"""Every word comes from a template: each step's prompt, each error code the code can raise,
each page; and docs/flows.md is the diagram the forms draw of themselves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.flows import mermaid
from bot.forms.order import OrderForm
from bot.forms.share import ShareForm

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
SOURCES = [*ROOT.glob("bot/**/*.py"), *ROOT.glob("handlers/**/*.py")]
FLOW_TEMPLATES = ("intro", "summary", "cancelled", "first_step")


def codes_in_source() -> set[str]:
    """Error codes the code can produce: Invalid("…"), Ended("…"), refusals "share_…"."""
    found = set()
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'(?:Invalid|Ended)\(\s*"([a-z_]+)"', text))
        found |= set(re.findall(r'return "((?:share|own|already)_[a-z_]+)"', text))
        found |= {f"share_{s}" for s in re.findall(r'return "(used_up|expired)"', text)}
    return found


@pytest.mark.parametrize("form", [ShareForm, OrderForm], ids=lambda f: f.name)
def test_every_step_of_every_flow_has_its_templates(form):
    for field in form.fields:
        assert (TEMPLATES / field.ask).is_file(), f"missing prompt {field.ask}"
    for name in FLOW_TEMPLATES:
        assert (TEMPLATES / form.name / f"{name}.txt").is_file()


def test_every_error_code_the_code_can_raise_has_a_template():
    codes = codes_in_source()
    assert {"out_of_stock", "share_used_up", "own_share", "gift_retired"} <= codes
    missing = sorted(c for c in codes if not (TEMPLATES / "errors" / f"{c}.txt").is_file())
    assert missing == []


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


def test_the_flow_diagram_in_docs_is_current():
    assert mermaid() in (ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
