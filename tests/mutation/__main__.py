"""Mutation testing of the money, stock and exactly-once code (`make mutate`).

Usage::

    python -m tests.mutation                        # every scoped module (SCOPE), 1 job
    python -m tests.mutation --jobs 2 bot/money/payments.py storage/runner.py
    python -m tests.mutation --list                 # the mutants, without running anything
    python -m tests.mutation --fresh                # forget every result kept in .mutate/
    python -m tests.mutation --only "charging_order::&" --against tests/test_payments_books.py
                                                    # these mutants against these tests only

Three steps. (1) The map: each test file runs once under coverage (tests/mutation/trace.py),
which records which test runs which line of the scoped modules; a file's map is kept in
.mutate/map/ until that file, the test support or a scoped module changes (--fresh after a
change elsewhere that moves what the tests run). (2) The mutants
(tests/mutation/mutants.py): each is written into a copy of the tree (.mutate/tree-N), and
only the tests that run one of its lines run against it, fastest first, stopping at the first
failure (`-x`), on every database the tests name (PostgreSQL through GIFTBOT_TEST_PG). A run
that fails, errs or outlasts its time kills the mutant. An outcome is kept in
.mutate/results.json with the mutant's text: a kill is reused while its test still passes on
the original, any other outcome while the mutant meets the same tests (same files). (3) The report: per module and overall, the mutants, those killed, those
docs/mutation.md lists as equivalent (no test can tell them apart; each with its reason),
those that survived and those no test runs; the rate is killed / (mutants − equivalent).
Exits 1 below --min-rate (90 %), 0 otherwise.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .mutants import Mutant, mutants_of

ROOT = Path(__file__).resolve().parents[2]
SCOPE = (
    "bot/gifting/shares.py",
    "bot/gifting/life/moves.py",
    "bot/gifting/life/table.py",
    "bot/gifting/orders.py",
    "bot/money/payments.py",
    "bot/money/refunds.py",
    "bot/gifting/draws.py",
    "bot/outgoing/outbox.py",
    "bot/forms/person.py",
    "storage/runner.py",
    "handlers/wire.py",
)
WORK = ROOT / ".mutate"
DOC = ROOT / "docs" / "mutation.md"
# Chromium's tests cover pages, not these modules' rules, and take minutes each.
BUDGET = float(os.environ.get("MUTATE_BUDGET", "30"))  # seconds of tests per mutant, at most
PYTEST = ["-q", "-p", "no:cacheprovider", "-m", "not browser", "-o", "addopts="]


@dataclass
class Outcome:
    status: str  # killed, timeout, survived, uncovered
    seconds: float
    tests: int  # how many tests it met
    by: str = ""  # the test that killed it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation")
    parser.add_argument("modules", nargs="*", default=list(SCOPE))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--fresh", action="store_true", help="forget kept maps and results")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--report", action="store_true", help="the kept outcomes, nothing run")
    parser.add_argument(
        "--again", action="store_true", help="run again the mutants kept as not killed"
    )
    parser.add_argument("--min-rate", type=float, default=90.0)
    parser.add_argument("--tests", nargs="*", help="test files for the map (default: all)")
    parser.add_argument("--only", action="append", help="mutants whose id holds this text")
    parser.add_argument("--against", nargs="+", help="run these tests, no map, nothing kept")
    args = parser.parse_args(argv)
    for module in args.modules:
        if module not in SCOPE:
            parser.error(f"{module} is not in the scope: {', '.join(SCOPE)}")
    if args.fresh:
        shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(exist_ok=True)
    mutants = [m for module in args.modules for m in mutants_of(ROOT / module, ROOT)]
    if args.only:
        mutants = [m for m in mutants if any(text in m.id for text in args.only)]
    if args.against:
        return against(mutants, args.against)
    if args.report:
        return report_kept(args.modules, mutants)
    if args.list:
        for m in mutants:
            print(f"{m.first_line:4} {m.id}    | {m.snippet}")
        print(f"{len(mutants)} mutants")
        return 0
    started = time.monotonic()
    lines, seconds = build_map(args.tests, args.jobs)
    mapped = time.monotonic()
    print(f"map: {len(seconds)} passing tests in {mapped - started:.0f} s", flush=True)
    outcomes = run_mutants(mutants, lines, seconds, args.jobs, args.again)
    done = time.monotonic()
    print(f"mutants: {len(mutants)} in {done - mapped:.0f} s", flush=True)
    rate = report(args.modules, mutants, outcomes, equivalent_ids())
    print(f"time: map {mapped - started:.0f} s, mutants {done - mapped:.0f} s")
    return 0 if rate >= args.min_rate else 1


# -- (1) the map ---------------------------------------------------------------------------


def build_map(only: list[str] | None, jobs: int):
    """{module: {line: [test ids]}} and {test id: seconds}, from each test file's kept map or
    a new one."""
    files = [Path(f) for f in only] if only else sorted((ROOT / "tests").glob("test_*.py"))
    (WORK / "map").mkdir(exist_ok=True)
    common = _digest(_support_files() + [ROOT / m for m in SCOPE])
    todo = []
    for path in files:
        key = _digest([path], common)
        kept = WORK / "map" / f"{path.stem}.json"
        if not (kept.exists() and json.loads(kept.read_text()).get("key") == key):
            todo.append((path, key, kept))
    if todo:
        print(f"map: tracing {len(todo)} of {len(files)} test files", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max(jobs, 1)) as pool:
        for path, took in pool.map(lambda job: _trace(*job), todo):
            print(f"  {path.name}: {took:.0f} s", flush=True)
    lines: dict[str, dict[int, set[str]]] = {m: {} for m in SCOPE}
    seconds: dict[str, float] = {}
    for path in files:
        traced = json.loads((WORK / "map" / f"{path.stem}.json").read_text())
        unusable = set(traced["failed"])
        for test, took in traced["seconds"].items():
            if test not in unusable:
                seconds[test] = took
        for module, by_line in traced["lines"].items():
            for line, tests in by_line.items():
                usable = {t for t in tests if t not in unusable}
                lines.setdefault(module, {}).setdefault(int(line), set()).update(usable)
    return lines, seconds


def _trace(path: Path, key: str, kept: Path) -> tuple[Path, float]:
    began = time.monotonic()
    out = kept.with_suffix(".tmp")
    command = [sys.executable, "-m", "tests.mutation.trace", str(out), *SCOPE, "--", *PYTEST]
    subprocess.run(
        [*command, str(path.relative_to(ROOT))],
        cwd=ROOT, env=_env(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip
    traced = json.loads(out.read_text()) if out.exists() else _empty()
    traced["key"] = key
    kept.write_text(json.dumps(traced))
    out.unlink(missing_ok=True)
    return path, time.monotonic() - began


def _empty() -> dict:
    return {"lines": {}, "seconds": {}, "failed": []}


def _support_files() -> list[Path]:
    tests = ROOT / "tests"
    return sorted(
        p
        for p in tests.rglob("*")
        if p.is_file()
        and not p.name.startswith("test_")
        and "__pycache__" not in p.parts
        and "mutation" not in p.relative_to(tests).parts
    )


def _digest(paths: list[Path], *extra: str) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    for text in extra:
        sha.update(text.encode())
    return sha.hexdigest()


def _env(tree: Path) -> dict:
    env = dict(os.environ)
    # The copy's sources come first (the editable install points at the work tree), and no
    # bytecode is kept: a mutant and the original may share a size and a second.
    env["PYTHONPATH"] = str(tree)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# -- (2) the mutants -------------------------------------------------------------------------


def run_mutants(
    mutants: list[Mutant], lines, seconds, jobs: int, again: bool = False
) -> dict[str, Outcome]:
    results_path = WORK / "results.json"
    kept = json.loads(results_path.read_text()) if results_path.exists() else {}
    trees: queue.Queue[Path] = queue.Queue()
    for n in range(max(jobs, 1)):  # by process: two campaigns may run at once
        trees.put(_copy_tree(WORK / f"tree-{os.getpid()}-{n}"))
    outcomes: dict[str, Outcome] = {}
    sources = {m.module: (ROOT / m.module).read_bytes() for m in mutants}
    test_digests: dict[str, str] = {}

    def digest(test: str) -> str:
        file = test.split("::")[0]
        if file not in test_digests:
            test_digests[file] = _digest([ROOT / file]) if (ROOT / file).exists() else ""
        return test_digests[file]

    equivalent = equivalent_ids()

    def one(mutant: Mutant) -> tuple[Mutant, Outcome, dict]:
        tests = _chosen(mutant, lines, seconds)
        text = mutant.apply(sources[mutant.module])
        mutated = hashlib.sha256(text).hexdigest()
        met = hashlib.sha256("".join(t + digest(t) for t in tests).encode()).hexdigest()
        old = kept.get(mutant.id)
        if old and old["mutated"] == mutated:
            outcome = Outcome(**old["outcome"])
            # A kill holds while its test still passes on the original; a survivor while it
            # meets the same tests.
            if outcome.status == "killed" and outcome.by in seconds:
                return mutant, outcome, old
            if again and mutant.id in equivalent:
                return mutant, outcome, old  # listed: nothing to look for
            if old["met"] == met and not (again and outcome.status != "killed"):
                return mutant, outcome, old
        if not tests:
            outcome = Outcome("uncovered", 0.0, 0)
        else:
            tree = trees.get()
            try:
                outcome = _run_one(tree, mutant, text, tests, seconds)
            finally:
                trees.put(tree)
        return mutant, outcome, {"mutated": mutated, "met": met}

    with concurrent.futures.ThreadPoolExecutor(max(jobs, 1)) as pool:
        for n, (mutant, outcome, keys) in enumerate(pool.map(one, mutants), 1):
            outcomes[mutant.id] = outcome
            _keep(results_path, mutant.id, keys | {"outcome": outcome.__dict__})
            mark = {"killed": ".", "timeout": "T", "survived": "S", "uncovered": "U"}
            print(
                f"[{n}/{len(mutants)}] {mark[outcome.status]} {outcome.seconds:5.1f}s "
                f"{outcome.tests:3} tests  {mutant.id}",
                flush=True,
            )
    while not trees.empty():
        shutil.rmtree(trees.get(), ignore_errors=True)
    return outcomes


def _keep(path: Path, mutant_id: str, result: dict) -> None:
    """Add one outcome to the kept results, under a lock (another campaign may be writing)."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kept = json.loads(path.read_text()) if path.exists() else {}
        kept[mutant_id] = result
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(kept, ensure_ascii=False, indent=0))
        temporary.replace(path)


def _chosen(mutant: Mutant, lines, seconds) -> list[str]:
    """The tests that run one of the mutant's lines (none: code run at import, before any test's
    context, so every test of the module), fastest first, as many as BUDGET seconds
    of their own time allow (the runner's lines run in every test: all of them would take
    the whole suite per mutant)."""
    by_line = lines.get(mutant.module, {})
    found = {t for line in mutant.lines for t in by_line.get(line, ())}
    if not found:  # module-level code, or a function only import calls: the module's tests
        found = {t for tests in by_line.values() for t in tests}
    covering = sorted(found, key=lambda t: (seconds.get(t, 0.0), t))
    chosen, spent = [], 0.0
    for test in covering:
        if chosen and spent + seconds.get(test, 0.0) > BUDGET:
            break
        chosen.append(test)
        spent += seconds.get(test, 0.0)
    return chosen


def _copy_tree(tree: Path) -> Path:
    """The project's files as git sees them (tracked and new, not ignored), nothing else."""
    shutil.rmtree(tree, ignore_errors=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = tree / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return tree


def _run_one(tree: Path, mutant: Mutant, text: bytes, tests: list[str], seconds) -> Outcome:
    target = tree / mutant.module
    original = target.read_bytes()
    target.write_bytes(text)
    began = time.monotonic()
    limit = 60 + 3 * min(sum(seconds.get(t, 1.0) for t in tests), BUDGET)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", *PYTEST, "-x", *tests],
            cwd=tree, env=_env(tree), capture_output=True, timeout=limit, check=False,
            start_new_session=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Outcome("timeout", time.monotonic() - began, len(tests))
    finally:
        target.write_bytes(original)
    took = time.monotonic() - began
    if run.returncode == 0:
        return Outcome("survived", took, len(tests))
    failed = re.search(rb"^(?:FAILED|ERROR) (\S+)", run.stdout, re.M)
    return Outcome("killed", took, len(tests), failed[1].decode() if failed else "")


def against(mutants: list[Mutant], tests: list[str]) -> int:
    """Each mutant against the named tests (to see a new test kill what it was written for).
    A kill is kept like a campaign's: it holds while its test passes on the original."""
    tree = _copy_tree(WORK / f"tree-{os.getpid()}-against")
    path = WORK / "results.json"
    kept = json.loads(path.read_text()) if path.exists() else {}
    survived = 0
    for mutant in mutants:
        text = mutant.apply((ROOT / mutant.module).read_bytes())
        old = kept.get(mutant.id, {})
        if old.get("mutated") == hashlib.sha256(text).hexdigest() and old["outcome"]["status"] in (
            "killed", "timeout",
        ):  # fmt: skip
            print(f"kept     {mutant.id}  {old['outcome']['by']}", flush=True)
            continue
        outcome = _run_one(tree, mutant, text, tests, {})
        survived += outcome.status == "survived"
        if outcome.status == "timeout" or (outcome.status == "killed" and "::" in outcome.by):
            mutated = hashlib.sha256(text).hexdigest()
            _keep(WORK / "results.json", mutant.id,
                  {"mutated": mutated, "met": "", "outcome": outcome.__dict__})  # fmt: skip
        print(f"{outcome.status:8} {outcome.seconds:5.1f}s {mutant.id}  {outcome.by}", flush=True)
    print(f"{len(mutants) - survived} of {len(mutants)} killed")
    shutil.rmtree(tree, ignore_errors=True)
    return 0


# -- (3) the report --------------------------------------------------------------------------


def report_kept(modules, mutants: list[Mutant]) -> int:
    """The report from the outcomes kept for these very mutants (a run under way, or done)."""
    path = WORK / "results.json"
    kept = json.loads(path.read_text()) if path.exists() else {}
    outcomes = {}
    for m in mutants:
        old = kept.get(m.id)
        if (
            old
            and old["mutated"]
            == hashlib.sha256(m.apply((ROOT / m.module).read_bytes())).hexdigest()
        ):
            outcomes[m.id] = Outcome(**old["outcome"])
    missing = [m for m in mutants if m.id not in outcomes]
    print(f"{len(outcomes)} of {len(mutants)} mutants have a kept outcome")
    done = [m for m in mutants if m.id in outcomes]
    rate = report(modules, done, outcomes, equivalent_ids())
    return 0 if not missing and rate >= 90 else 1


def equivalent_ids() -> dict[str, str]:
    """docs/mutation.md's list of equivalent mutants: `- \\`id\\`: reason` lines under its
    "Equivalent mutants" heading."""
    if not DOC.exists():
        return {}
    listed, inside = {}, False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            inside = line.lower().startswith("## equivalent")
        elif inside and (found := re.match(r"^- `([^`]+)`:?\s*(.*)$", line)):
            listed[found[1]] = found[2]
    return listed


def report(modules, mutants: list[Mutant], outcomes: dict[str, Outcome], equivalent) -> float:
    ids = {m.id for m in mutants}
    for stale in sorted(set(equivalent) - ids):
        if stale.split("::")[0] in modules:
            print(f"docs/mutation.md lists a mutant that no longer exists: {stale}")
    rows = []
    totals = [0, 0, 0, 0, 0]
    survivors = []
    for module in modules:
        mine = [m for m in mutants if m.module == module]
        killed = sum(outcomes[m.id].status in ("killed", "timeout") for m in mine)
        same = sum(m.id in equivalent and outcomes[m.id].status not in ("killed", "timeout")
                   for m in mine)  # fmt: skip
        for m in mine:
            status = outcomes[m.id].status
            if status in ("survived", "uncovered") and m.id not in equivalent:
                survivors.append((m, outcomes[m.id]))
            if status in ("killed", "timeout") and m.id in equivalent:
                print(f"listed as equivalent, yet killed: {m.id}")
        uncovered = sum(
            outcomes[m.id].status == "uncovered" and m.id not in equivalent for m in mine
        )
        survived = len(mine) - killed - same
        counted = [len(mine), killed, same, survived, uncovered]
        totals = [a + b for a, b in zip(totals, counted, strict=True)]
        rows.append((module, *counted))
    rows.append(("overall", *totals))
    if survivors:
        print("\nsurvivors:")
        for m, outcome in survivors:
            print(f"  {m.module}:{m.first_line} {m.id} ({outcome.status}, {outcome.tests} tests)")
            print(f"      {m.snippet}")
    print(f"\n{'module':28} mutants killed equivalent survived (no test) rate")
    for module, total, killed, same, survived, uncovered in rows:
        rate = 100.0 * killed / (total - same) if total > same else 100.0
        print(
            f"{module:28} {total:7} {killed:6} {same:10} {survived:8} {uncovered:9} {rate:5.1f} %"
        )
    total, killed, same = totals[:3]
    return 100.0 * killed / (total - same) if total > same else 100.0


if __name__ == "__main__":
    sys.exit(main())
