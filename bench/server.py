"""The processes of a benchmark: the bot as `python -m bot serve`, the bare handler, the sink,
and the memory of a process tree.

Usage::

    with Databases() as dbs:
        url = dbs.url("sqlite")                      # or "postgres" (a fresh schema, dropped after)
    bot = BotServer(url, sink_url, workers=1, safe=False).start()   # waits for /healthz
    with RssSampler(bot.pid) as rss: ...             # rss.peak_kib: the tree's summed VmRSS
    bot.stop()
"""

from __future__ import annotations

import contextlib
import copy
import os
import secrets
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_BASE = os.environ.get("GIFTBOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
APP_ID = "wxbench0000000001"
BIG_STOCK = 10_000_000  # every gift: the scenarios share thousands of units


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- processes -----------------------------------------------------------------------


class Proc:
    """A child process with its output in a log file, stopped by its own pid only."""

    def __init__(self, name: str, cmd: list[str], log: Path, health_url: str):
        self.name, self.cmd, self.log, self.health_url = name, cmd, log, health_url
        self.popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self, wait_s: float = 60) -> Proc:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                self.cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError):
                if http_get(self.health_url, timeout=2)[0] == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.health_url} in {wait_s} s")

    def stop(self, grace_s: float = 20) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else None
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            for pid in reversed(tree_pids(self.popen.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return self.popen.wait(5)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


def tree_pids(root: int) -> list[int]:
    """`root` and its descendants, parents first (from /proc/<pid>/task/<tid>/children)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                todo += [int(child) for child in text.split()]
        except OSError:
            continue
    return out


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ms(pid: int) -> float:
    """CPU time a process has used so far (user + system), from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def tree_cpu_ms(root: int) -> float:
    return sum(cpu_ms(pid) for pid in tree_pids(root))


def pg_sessions_cpu_ms(db_url: str) -> float:
    """CPU time used so far by the PostgreSQL sessions named as this url names its own (on
    this machine); 0 for SQLite."""
    if "application_name=" not in db_url:
        return 0.0
    import psycopg2

    name = db_url.rsplit("application_name=", 1)[1].split("&")[0]
    conn = psycopg2.connect(**pg_connect_kwargs(PG_BASE))
    try:
        cur = conn.cursor()
        cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,))
        return sum(cpu_ms(pid) for (pid,) in cur.fetchall())
    finally:
        conn.close()


def tree_rss_kib(root: int) -> int:
    return sum(_status_kib(pid, "VmRSS") for pid in tree_pids(root))


def tree_hwm_kib(root: int) -> int:
    """The sum of each process's own peak (VmHWM): an upper bound of the tree's peak."""
    return sum(_status_kib(pid, "VmHWM") for pid in tree_pids(root))


class RssSampler:
    """Samples the summed VmRSS of a process tree every `interval` seconds, in a thread."""

    def __init__(self, root: int, interval: float = 0.2):
        self.root, self.interval = root, interval
        self.peak_kib = self.last_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> int:
        self.last_kib = tree_rss_kib(self.root)  # a few small /proc reads: cheap
        self.peak_kib = max(self.peak_kib, self.last_kib)
        return self.last_kib

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# -- databases ---------------------------------------------------------------------------


def pg_connect_kwargs(url: str) -> dict:
    from playhouse.db_url import parse

    return parse(url)


def pg_reachable(url: str = PG_BASE) -> str | None:
    """None when PostgreSQL answers at `url`, else the reason."""
    try:
        import psycopg2
    except ImportError:
        return "psycopg2 is not installed (pip install -e '.[bench]')"
    try:
        kw = pg_connect_kwargs(url)
        conn = psycopg2.connect(connect_timeout=3, **kw)
        conn.close()
        return None
    except Exception as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class Databases:
    """Temporary databases: SQLite files in a temp folder, PostgreSQL schemas (dropped after)."""

    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="gb-bench-"))
        self.schemas: list[str] = []

    def url(self, kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{self.tmp / f'bench-{secrets.token_hex(3)}.db'}"
        import psycopg2

        schema = f"bench_{secrets.token_hex(5)}"
        conn = psycopg2.connect(**pg_connect_kwargs(PG_BASE))
        conn.autocommit = True
        conn.cursor().execute(f'CREATE SCHEMA "{schema}"')
        conn.close()
        self.schemas.append(schema)
        sep = "&" if "?" in PG_BASE else "?"
        # The sessions named after the schema: their CPU is read from /proc (cpu_ms).
        return f"{PG_BASE}{sep}options=-csearch_path%3D{schema}&application_name={schema}"

    def close(self) -> None:
        if self.schemas:
            import psycopg2

            try:
                conn = psycopg2.connect(**pg_connect_kwargs(PG_BASE))
                conn.autocommit = True
                for schema in self.schemas:
                    conn.cursor().execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                conn.close()
            except psycopg2.Error as exc:
                names = ", ".join(self.schemas)
                print(f"could not drop the schemas {names}: {exc}; drop them by hand")
            self.schemas = []
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Databases:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- the bot -------------------------------------------------------------------------------


def serve_supports_workers() -> bool:
    out = subprocess.run(
        [PYTHON, "-m", "bot", "serve", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    return "--workers" in out.stdout


def merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def random_word(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


class BotServer:
    """`python -m bot serve --config <tmp.toml>` on a free port, as a real process."""

    def __init__(self, db_url: str, sink_url: str, workers: int = 1, safe: bool = False):
        self.db_url, self.workers = db_url, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="gb-bot-"))
        self.token = random_word(24)
        self.cookie_secret = secrets.token_urlsafe(32)
        self.aes_key = random_word(43) if safe else ""
        example = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
        raw = merge(
            example,
            {
                "server": {
                    "host": "127.0.0.1",
                    "port": self.port,
                    "public_url": self.url,
                    "cookie_secret": self.cookie_secret,
                    "sandbox": False,
                },
                "database": {"url": db_url},
                "wechat": {
                    "token": self.token,
                    "app_id": APP_ID,
                    "app_secret": random_word(32),
                    "encoding_aes_key": self.aes_key,
                    "api_base": sink_url,
                    "oauth_base": sink_url,
                },
                "sms": {"backend": "webhook", "webhook_url": f"{sink_url}/sms"},
                "delivery": {"closed_dates": []},
            },
        )
        for gift in raw["gifts"]:
            gift["stock"] = BIG_STOCK
        self.config = raw
        self.config_path = self.dir / "bench.toml"
        self.config_path.write_bytes(tomli_w.dumps(raw).encode())
        self.log = self.dir / "bot.log"
        self.proc: Proc | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> BotServer:
        cmd = [PYTHON, "-m", "bot", "serve", "--config", str(self.config_path)]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        self.proc = Proc("the bot", cmd, self.log, f"{self.url}/healthz").start()
        return self

    def stop(self) -> int | None:
        return self.proc.stop() if self.proc else None

    def log_offset(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def log_problems(self, since: int) -> dict[str, int]:
        """Failures the bot logged since `since` (a log offset): apologies and tracebacks."""
        try:
            with open(self.log, "rb") as f:
                f.seek(since)
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return {}
        counts = {
            "message failed": text.count('"message failed"'),
            "tracebacks": text.count("Traceback (most recent call last)"),
            "errors logged": text.count('"level": "error"'),
        }
        return {k: v for k, v in counts.items() if v}

    def log_excerpt(self, since: int, needle: str = "Traceback", chars: int = 2500) -> str:
        with open(self.log, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", errors="replace")
        at = text.find(needle)
        return text[at : at + chars] if at >= 0 else ""

    def cleanup(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


class Helper:
    """The bare handler or the sink, as `python -m bench.<module>` on a free port."""

    def __init__(self, module: str, *args: str, logdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [PYTHON, "-m", f"bench.{module}", "--port", str(self.port), *args]
        self.proc = Proc(module, cmd, logdir / f"{module}.log", f"{self.url}/healthz")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> Helper:
        self.proc.start()
        return self

    def stop(self) -> None:
        self.proc.stop()
