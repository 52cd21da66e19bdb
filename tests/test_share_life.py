"""A share's life is one table (bot/gifting/life/): the docs are drawn from it, nothing else
writes a share's state columns, and the house around it imports one way, without a cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bot.gifting import life
from bot.gifting.life.drawing import document

ROOT = Path(__file__).resolve().parent.parent
LIFE = ROOT / "bot" / "gifting" / "life"


def test_docs_share_life_md_is_drawn_from_the_table_and_current():
    assert (ROOT / "docs" / "share_life.md").read_text(encoding="utf-8") == document()


def test_every_state_a_move_cannot_start_from_says_why_for_the_moves_people_make():
    """Claiming, joining, paying and revoking are asked for by people: each state either
    allows the move or names the code they are told."""
    for move in (life.Move.CLAIM, life.Move.JOIN, life.Move.PAY, life.Move.REVOKE):
        rule = life.RULES[move]
        for state in life.State:
            assert (state in rule.sources) != (state in rule.refused), (move, state)


def test_every_state_is_reached_by_some_move_and_every_live_state_can_end():
    reached = {b for rule in life.RULES.values() for _, b in rule.edges}
    assert reached == set(life.State)
    for state in life.LIVE:
        ways_out = {b for rule in life.RULES.values() for a, b in rule.edges if a == state}
        assert ways_out & life.OVER, f"{state} never ends"


# -- the one writer ------------------------------------------------------------------------

WRITES = {"update", "create", "insert", "insert_many", "replace", "get_or_create"}
SQL_WRITE = re.compile(r"\b(UPDATE\s+\"?share\"?\s+SET|INSERT\s+INTO\s+\"?share\"?\b)", re.I)


def share_state_writes(source: str) -> list[str]:
    """Where this code writes a share's state columns: `Share.update(released=…)` and the
    like, a `{Share.claimed: …}` mapping passed to them, raw SQL, or `share.<column> = …`
    followed by a save()."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id == "Share" and node.func.attr in WRITES:
                named = {k.arg for k in node.keywords if k.arg}
                for arg in node.args:
                    if isinstance(arg, ast.Dict):
                        named |= {k.attr for k in arg.keys if isinstance(k, ast.Attribute)}
                if named & life.STATE_COLUMNS or node.func.attr != "update":
                    found.append(f"line {node.lineno}: Share.{node.func.attr}(…{named})")
            if node.func.attr == "save" and isinstance(owner, ast.Name) and "share" in owner.id:
                found.append(f"line {node.lineno}: {owner.id}.save()")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"line {node.lineno}: SQL {node.value[:40]!r}"] * bool(
                SQL_WRITE.search(node.value)
            )
    return found


def test_the_scanner_sees_each_way_of_writing_a_share():
    """The next test is only as good as this scanner: each disguise is found."""
    for sneaky in (
        "Share.update(released=True).where(Share.id == 1).execute()",
        "Share.update({Share.claimed: Share.claimed + 1}).execute()",
        "Share.create(token='t', quantity=1)",
        "db.execute_sql('UPDATE share SET payment = %s')",
        "share.save()",
    ):
        assert share_state_writes(sneaky), sneaky
    assert share_state_writes("Share.update(qr_url='u').execute()") == []  # not state


def test_nothing_but_the_life_table_writes_a_shares_state():
    writers = {}
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("handlers/**/*.py"),
                 *ROOT.glob("storage/*.py")]:  # fmt: skip
        if LIFE in path.parents:
            continue
        if found := share_state_writes(path.read_text(encoding="utf-8")):
            writers[str(path.relative_to(ROOT))] = found
    assert writers == {}


# -- one way down ----------------------------------------------------------------------------

# bot/'s rooms from the top floor down: a module may import its own room's or lower ones'.
FLOORS = ["app", "reports", "chat", "money", "gifting", "outgoing", "render", "forms", "low"]
LOW = {"codes", "words", "replies", "users", "visitors", "logs", "metrics", "sandbox",
       "sms_kinds", "config", "media_files"}  # fmt: skip


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "bot" or len(parts) == 1:
        return "outside"
    top = "app" if parts[1] == "__main__" else parts[1]
    return "low" if top in LOW else top if top in FLOORS else f"unknown:{top}"


def bot_modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "bot").rglob("*.py"):
        if "data" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Every bot module this one imports, anywhere in it (a function's import counts too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
    return {m for m in out if m in known and m != module}


def test_bot_imports_run_one_way_down_and_in_no_circle():
    modules = bot_modules()
    known = set(modules)
    graph = {m: imports_of(m, p, known) for m, p in modules.items()}
    upward = [
        (m, i) for m, deps in graph.items() for i in deps
        if room(m) in FLOORS and room(i) in FLOORS
        and FLOORS.index(room(i)) < FLOORS.index(room(m))
    ]  # fmt: skip
    assert upward == []
    assert {room(m) for m in modules} <= {*FLOORS, "outside"}, "a new room needs a floor"
    # no circle, not even through an import only for type checking
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for dep in graph[m]:
            if state.get(dep) == 1:
                pytest.fail(f"import circle: {' -> '.join([*path, m, dep])}")
            if dep not in state:
                visit(dep, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


LONGEST = 300  # lines: past this a module is two subjects, and is split by them


def test_no_module_of_the_house_is_longer_than_one_subject():
    """bot/, handlers/ and storage/ keep each module to one subject (the schema's migrations,
    a history, aside): none is longer than LONGEST lines."""
    long = {
        str(path.relative_to(ROOT)): lines
        for folder in ("bot", "handlers", "storage")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > LONGEST
    }
    assert long == {}
