"""Which test runs which line of the scoped modules: pytest under coverage, one context per
test, the server's threads included (a LiveBot serves from a thread of the test process).

Usage (what `python -m tests.mutation` runs for each test file)::

    python -m tests.mutation.trace OUT.json MODULE... -- PYTEST_ARGS...

OUT.json: {"lines": {module: {line: [test id, …]}}, "seconds": {test id: s}, "failed": [ids]}.
The context switches when a test's setup starts, so a fixture's server and the test's own
requests count for the test; a test that failed or was skipped is listed, and never asked to kill.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import coverage
import pytest


class Tracer:
    def __init__(self, cov: coverage.Coverage):
        self.cov = cov
        self.seconds: dict[str, float] = {}
        self.failed: set[str] = set()
        self._started: dict[str, float] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        self.cov.switch_context(item.nodeid)
        self._started[item.nodeid] = time.monotonic()

    def pytest_runtest_logreport(self, report):
        if report.failed or report.skipped:
            self.failed.add(report.nodeid)
        if report.when == "teardown" and report.nodeid in self._started:
            self.seconds[report.nodeid] = time.monotonic() - self._started.pop(report.nodeid)


def main(argv: list[str]) -> int:
    split = argv.index("--")
    out, modules, pytest_args = Path(argv[0]), argv[1:split], argv[split + 1 :]
    files = [str(Path(m).resolve()) for m in modules]
    cov = coverage.Coverage(data_file=None, include=files, branch=False)
    cov.start()
    tracer = Tracer(cov)
    try:
        code = pytest.main(pytest_args, plugins=[tracer])
    finally:
        cov.stop()
    data = cov.get_data()
    lines: dict[str, dict[int, list[str]]] = {}
    for module, path in zip(modules, files, strict=True):
        by_line = data.contexts_by_lineno(path)
        lines[module] = {
            line: sorted(c for c in contexts if c in tracer.seconds)
            for line, contexts in by_line.items()
        }
    out.write_text(
        json.dumps(
            {
                "lines": lines,
                "seconds": tracer.seconds,
                "failed": sorted(tracer.failed),
                "exit": int(code),
            }  # fmt: skip
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
