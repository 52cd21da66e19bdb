"""The documents point at real things: every test SECURITY.md names exists."""

from __future__ import annotations

import re

from conftest import ROOT


def test_every_test_security_md_names_exists():
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    named, module = [], None
    for ref in re.findall(r"`(?:(test_\w+)\.py)?(?:::)?(test_\w+)`", text):
        module = ref[0] or module  # "::name" after "file.py::name" stays in that file
        named.append((module, ref[1]))
    assert len(named) > 40
    missing = [
        (module, name)
        for module, name in named
        if not re.search(rf"^def {name}\(", (ROOT / "tests" / f"{module}.py").read_text(), re.M)
    ]
    assert missing == []
