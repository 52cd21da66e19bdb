"""Running wrk with bench/load.lua: the request file, the run, its summary.

Usage::

    chains = [Chain("o_a", [Step(raw_request, expect="礼物清单")]), ...]
    result = run(url, chains, target="bot", route="to", seconds=10)      # for a duration
    result = run(url, chains, target="bot", route="to")                  # until every chain is done
    result = run(url, chains, target="bot", route="to", seconds=10, rate=500)  # paced: 500 req/s
    result.rate, result.ok, result.latency_ms["p99"], result.problems()

A chain is one user's requests, each sent after the reply to the one before.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).resolve().parent / "load.lua"
INSTALL_HINT = (
    "wrk is not installed: it generates the load. Install it with "
    "`apt-get install wrk` (Debian/Ubuntu) or `brew install wrk` (macOS), "
    "or build it from https://github.com/wg/wrk and put it on PATH."
)


class WrkMissing(Exception):
    pass


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing(INSTALL_HINT)
    return path


def wrk_version() -> str:
    try:
        out = subprocess.run([wrk_path(), "--version"], capture_output=True, text=True).stdout
    except WrkMissing:
        return "missing"
    return out.split("Copyright")[0].strip().removeprefix("wrk ") or "unknown"


@dataclass
class Step:
    request: bytes
    expect: str = ""  # words the reply must contain (checked against the bot only)
    capture: str = ""  # a Lua pattern whose first capture is written out with the user


@dataclass
class Chain:
    user: str
    steps: list[Step]


@dataclass
class Result:
    target: str
    seconds: float
    requests: int
    errors: dict[str, int]
    latency_ms: dict[str, float]
    script: dict[str, int]
    captures: list[tuple[str, str]] = field(default_factory=list)
    evidence: str = ""

    @property
    def ok(self) -> int:
        return self.script.get("ok", 0)

    @property
    def responses(self) -> int:
        return self.script.get("responses", 0)

    @property
    def rate(self) -> float:
        """Replies per second: real ones only, the filler excluded."""
        return self.responses / self.seconds if self.seconds else 0.0

    @property
    def exhausted(self) -> bool:
        return bool(self.script.get("exhausted"))

    def problems(self) -> list[str]:
        """What went wrong on the wire; empty when every reply was a good one."""
        out = [f"{n} {kind} errors" for kind, n in self.errors.items() if n]
        s = self.script
        for key in ("non2xx", "unexpected", "misaddressed", "orphans", "stalled"):
            if s.get(key):
                out.append(f"{s[key]} {key}")
        statuses = {k.split(".", 1)[1]: v for k, v in s.items() if k.startswith("status.")}
        if statuses:
            out.append("statuses " + ", ".join(f"{k}×{v}" for k, v in sorted(statuses.items())))
        return out


def write_data(path: Path, chains: list[Chain], filler: bytes) -> None:
    with open(path, "wb") as f:
        f.write(b"GBENCH 1\n")
        f.write(b"F %d\n" % len(filler) + filler)
        for chain in chains:
            user = chain.user.encode()
            f.write(b"C %d %d\n" % (len(chain.steps), len(user)) + user)
            for step in chain.steps:
                expect, capture = step.expect.encode(), step.capture.encode()
                f.write(b"S %d %d %d\n" % (len(step.request), len(expect), len(capture)))
                f.write(step.request + expect + capture)


def run(
    url: str,
    chains: list[Chain],
    *,
    target: str,
    route: str,
    seconds: float | None = None,
    connections: int = 16,
    threads: int = 1,
    aes_key: bytes | None = None,
    cycle: bool = False,
    timeout_s: float = 5.0,
    filler: bytes | None = None,
    limit_s: float = 900,
    stall_s: float = 60,
    on_start=None,
    rate: float = 0,
) -> Result:
    """Load `url` for `seconds`, or (seconds=None) until every chain is done.

    `rate` > 0 paces the run: requests go out at that many per second in all (shared
    by the threads), each connection waiting for its slot; 0 sends as fast as replies come.

    `target` "bot" checks each reply; "bare" only parses it the same way.
    A reply slower than `timeout_s` (WeChat waits 5 s) counts as a timeout.
    """
    host = url.split("://", 1)[1].split("/", 1)[0]
    filler = filler or f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    with tempfile.TemporaryDirectory(prefix="gb-wrk-") as tmp:
        data = Path(tmp) / "requests.dat"
        write_data(data, chains, filler)
        # wrk takes whole seconds; another length ends by SIGINT, on time (wrk then
        # reports the time it really ran).
        whole = seconds is None or (seconds >= 1 and float(seconds).is_integer())
        duration = limit_s if seconds is None else math.ceil(seconds) + (0 if whole else 1)
        cmd = [
            wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{duration:.0f}s",
            f"--timeout={timeout_s:g}s", "-s", str(LUA), url, "--",
            str(data), target, route, aes_key.hex() if aes_key else "-", tmp, str(threads),
            "1" if cycle else "0", f"{max(rate, 0):.6g}",
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if on_start:
            on_start(proc)
        lines: list[str] = []
        started = time.monotonic()

        def stop_when(delay: float | None) -> None:
            if delay is not None:
                time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)

        if not whole:
            threading.Thread(target=stop_when, args=(seconds,), daemon=True).start()
        last = [time.monotonic()]
        stalled = []

        def watch() -> None:  # until every chain is done: no reply for stall_s ends the run
            while proc.poll() is None:
                time.sleep(1)
                if time.monotonic() - last[0] > stall_s and proc.poll() is None:
                    stalled.append(True)
                    stop_when(None)
                    return

        if seconds is None:
            threading.Thread(target=watch, daemon=True).start()
        drained = 0
        for line in proc.stdout:
            lines.append(line)
            last[0] = time.monotonic()
            if line.startswith("@@drained"):
                drained += 1  # one per wrk thread: each plays its share of the chains
                if drained == threads:
                    stop_when(None)
        proc.wait()
        stderr = proc.stderr.read()
        summary = next((x for x in lines if x.startswith("@@summary ")), None)
        if summary is None:
            raise RuntimeError(
                f"wrk ended ({proc.returncode}) without a summary after "
                f"{time.monotonic() - started:.1f} s:\n{''.join(lines)[-2000:]}{stderr[-2000:]}"
            )
        raw = json.loads(summary.removeprefix("@@summary "))
        result = Result(
            target=target,
            seconds=raw["duration_us"] / 1e6,
            requests=int(raw["requests"]),
            errors={k: int(v) for k, v in raw["errors"].items()},
            latency_ms={k: v / 1000 for k, v in raw["latency_us"].items()},
            script={k: int(v) for k, v in raw["script"].items()},
        )
        if stalled:
            result.script["stalled"] = 1
        for path in sorted(Path(tmp).glob("captures-*.tsv")):
            for row in path.read_text(encoding="utf-8").splitlines():
                user, _, value = row.partition("\t")
                result.captures.append((user, value))
        result.evidence = "".join(
            p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(Path(tmp).glob("evidence-*.txt"))
        )
        return result
