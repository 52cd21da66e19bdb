"""The mutants of one module: small changes a real bug would make, each named so it can be
listed (docs/mutation.md) and found again after unrelated edits.

Usage::

    for mutant in mutants_of(Path("bot/money/payments.py"), root):
        mutant.id          # "bot/money/payments.py::charging_order::& -> |::1"
        mutant.lines       # the source lines the change touches (to find the tests that run them)
        mutant.apply(text) # the module's text with this one change

What is changed (the kinds of bug that cost money, stock or a message; named in ASCII
without backticks, so an id fits a Markdown code span): `&`/`|` and `and`/`or`
swapped (peewee's WHERE clauses, guards), a comparison's boundary or sense flipped, `not` and
`~` dropped, arithmetic turned around, a number one more (not an index or a slice's bound), `True`/`False` swapped, `min`/`max`
swapped, a call, a `raise`, an attribute or item store, `continue` or `break` deleted, and a
row lock (`locked(q)`) dropped. Docstrings, log lines and text are left alone: a change there is
no bug in money or stock. Each change is spliced into the original text at the node's place, so
the rest of the file stays byte for byte (tests that read sources still read ours), and it keeps
its line count, so line numbers mean the same in the mutant.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

BINARY = {
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Pow: ast.Mult,
    ast.Mod: ast.FloorDiv,
}
COMPARE = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
SYMBOL = {
    ast.BitAnd: "&", ast.BitOr: "|", ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/",
    ast.FloorDiv: "//", ast.Pow: "**", ast.Mod: "%", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
    ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in",
    ast.Is: "is", ast.IsNot: "is not", ast.And: "and", ast.Or: "or", ast.Not: "not",
    ast.Invert: "~", ast.USub: "-",
}  # fmt: skip
LOCKS = frozenset({"locked"})  # a call whose loss only a race shows: `locked(q)` → `q`
LOGGERS = ("log.", "(log.", "logging.")


@dataclass(frozen=True)
class Mutant:
    module: str  # path from the project's root
    function: str  # qualified name, "<module>" for module-level code
    change: str  # what was changed, in words: "& -> |"
    occurrence: int  # the n-th change of this wording in this function
    first_line: int
    last_line: int
    start: int  # byte offsets of the replaced text
    end: int
    replacement: bytes
    snippet: str  # the first changed line, as written
    runs_in: tuple[int, int] | None = None  # a default's: the lines of the function it serves

    @property
    def id(self) -> str:
        return f"{self.module}::{self.function}::{self.change}::{self.occurrence}"

    @property
    def lines(self) -> range:
        """The lines whose tests meet this mutant: its own, or for a default argument (read
        at import, before any test) the body of the function that uses it."""
        first, last = self.runs_in or (self.first_line, self.last_line)
        return range(first, last + 1)

    def apply(self, source: bytes) -> bytes:
        return source[: self.start] + self.replacement + source[self.end :]


def mutants_of(path: Path, root: Path) -> list[Mutant]:
    source = path.read_bytes()
    tree = ast.parse(source)
    finder = _Finder(source, str(path.relative_to(root)))
    finder.visit(tree)
    return finder.mutants


class _Finder(ast.NodeVisitor):
    def __init__(self, source: bytes, module: str):
        self.source = source
        self.module = module
        self.line_starts = [0]
        for line in source.split(b"\n"):
            self.line_starts.append(self.line_starts[-1] + len(line) + 1)
        self.scope: list[str] = []
        self.mutants: list[Mutant] = []
        self.counts: dict[tuple[str, str], int] = {}
        self.serving: tuple[int, int] | None = None  # visiting a function's defaults
        self.in_index = 0  # inside a subscript's index or slice: `[0]`, `[:1000]`

    # -- where we are ----------------------------------------------------------------

    def visit_FunctionDef(self, node):
        self.serving = (node.body[0].lineno, node.end_lineno)
        for default in node.args.defaults + [d for d in node.args.kw_defaults if d]:
            self.visit(default)
        self.serving = None
        self.scope.append(node.name)
        self._body(node.body)
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self.scope.append(node.name)
        self._body(node.body)
        self.scope.pop()

    def visit_Module(self, node):
        self._body(node.body)

    def _body(self, body):
        for index, stmt in enumerate(body):
            docstring = index == 0 and _is_text(stmt)
            if not docstring:
                self.visit(stmt)

    # -- statements --------------------------------------------------------------------

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Call):
            if _is_log(node.value):
                return
            self._delete(node, f"delete {_head(self._text(node))}")
        self.generic_visit(node)

    def visit_Raise(self, node):
        text = self._text(node)
        if "AssertionError" in text:  # "unreachable": no behaviour to change
            return
        self._delete(node, f"delete {_head(text)}")
        self.generic_visit(node)

    def visit_Assign(self, node):
        if all(isinstance(t, (ast.Attribute, ast.Subscript)) for t in node.targets):
            self._delete(node, f"delete {_head(self._text(node))}")
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        if isinstance(node.target, (ast.Attribute, ast.Subscript)):
            self._delete(node, f"delete {_head(self._text(node))}")
        self.generic_visit(node)

    def visit_Continue(self, node):
        self._delete(node, "delete continue")

    def visit_Break(self, node):
        self._delete(node, "delete break")

    def visit_JoinedStr(self, node):
        return  # text

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)

    # -- expressions -------------------------------------------------------------------

    def visit_BinOp(self, node):
        new = BINARY.get(type(node.op))
        if new and not (_is_text_node(node.left) or _is_text_node(node.right)):
            mutated = ast.BinOp(node.left, new(), node.right)
            self._replace(node, f"{SYMBOL[type(node.op)]} -> {SYMBOL[new]}", mutated)
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        new = ast.Or if isinstance(node.op, ast.And) else ast.And
        mutated = ast.BoolOp(new(), node.values)
        self._replace(node, f"{SYMBOL[type(node.op)]} -> {SYMBOL[new]}", mutated)
        self.generic_visit(node)

    def visit_Compare(self, node):
        for index, op in enumerate(node.ops):
            new = COMPARE[type(op)]
            ops = list(node.ops)
            ops[index] = new()
            mutated = ast.Compare(node.left, ops, node.comparators)
            self._replace(node, f"{SYMBOL[type(op)]} -> {SYMBOL[new]}", mutated)
        self.generic_visit(node)

    def visit_UnaryOp(self, node):
        if isinstance(node.op, (ast.Not, ast.Invert, ast.USub)):
            self._replace(node, f"drop {SYMBOL[type(node.op)]}", node.operand)
        self.generic_visit(node)

    def visit_Subscript(self, node):
        self.visit(node.value)
        self.in_index += 1
        self.visit(node.slice)
        self.in_index -= 1

    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, bool):
            self._replace(node, f"{value} -> {not value}", ast.Constant(not value))
        elif isinstance(value, int) and not self.in_index:
            self._replace(node, f"{value} -> {value + 1}", ast.Constant(value + 1))

    def visit_Call(self, node):
        if _is_log(node):
            return
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in LOCKS and len(node.args) == 1 and not node.keywords:
            self._replace(node, f"{name}(q) -> q", node.args[0])
        if name in ("min", "max"):
            other = "max" if name == "min" else "min"
            mutated = ast.Call(ast.Name(other), node.args, node.keywords)
            self._replace(node, f"{name} -> {other}", mutated)
        self.generic_visit(node)

    # -- splicing ------------------------------------------------------------------------

    def _offset(self, line: int, col: int) -> int:
        return self.line_starts[line - 1] + col

    def _text(self, node) -> str:
        start = self._offset(node.lineno, node.col_offset)
        return self.source[start : self._offset(node.end_lineno, node.end_col_offset)].decode()

    def _delete(self, node, change: str) -> None:
        # `pass` and the lines the statement took, so every later line keeps its number.
        self._add(node, change, b"pass" + b"\n" * (node.end_lineno - node.lineno))

    def _replace(self, node, change: str, mutated: ast.AST) -> None:
        text = ast.unparse(ast.fix_missing_locations(mutated))
        padding = "\n" * (node.end_lineno - node.lineno)
        self._add(node, change, f"({text}{padding})".encode())

    def _add(self, node, change: str, replacement: bytes) -> None:
        function = ".".join(self.scope) or "<module>"
        key = (function, change)
        self.counts[key] = self.counts.get(key, 0) + 1
        line = self.source.split(b"\n")[node.lineno - 1].decode().strip()
        self.mutants.append(
            Mutant(
                self.module,
                function,
                change,
                self.counts[key],
                node.lineno,
                node.end_lineno,
                self._offset(node.lineno, node.col_offset),
                self._offset(node.end_lineno, node.end_col_offset),
                replacement,
                line,
            )  # fmt: skip
        )


def _is_text(stmt) -> bool:
    return isinstance(stmt, ast.Expr) and _is_text_node(stmt.value)


def _is_text_node(node) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


def _is_log(call: ast.Call) -> bool:
    return ast.unparse(call.func).startswith(LOGGERS)


def _head(text: str) -> str:
    """A statement's first line, short enough for a name."""
    first = text.split("\n")[0].strip().replace("`", "'")
    return first if len(first) <= 60 else first[:57] + "..."
