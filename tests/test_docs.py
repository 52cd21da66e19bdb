"""The documents point at real things: every test SECURITY.md names exists; and the tests'
own layout holds: what several test modules share lives in a helper module, never in a test
module another imports."""

from __future__ import annotations

import ast
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


def test_no_test_module_imports_another():
    """A helper two test files need goes into a helper module beside helpers.py (mobile.py,
    drawing.py, operating.py, …): importing a test module runs it a second time under another
    name and ties one file's tests to another's insides (and a test function imported by name
    is collected twice)."""
    imports = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [alias.name for alias in node.names]
            else:
                continue
            imports += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
                for name in names
                if any(part.startswith("test_") for part in name.split("."))
            ]
    assert imports == []
