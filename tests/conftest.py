"""Fixtures: a config built from config.example.toml, the real server on a free port, the
databases (SQLite always; PostgreSQL when reachable), and the fakes of the outside world.

Usage in a test::

    def test_x(bot):                      # the real server, SQLite, WeChat faked
        reply = bot.wx.text("o_a", "礼品")
        bot.drain()                       # work the outbox now
        bot.fake_wechat.messages, bot.sms.received

    @pytest.mark.parametrize("bot", ["sqlite", "postgres"], indirect=True)

Payments: GIFTBOT_TEST_PAYMENTS=wechatpay runs every `bot` (a LiveBot, and the `serve`
processes of tests/cluster.py) in [payments] mode "wechatpay" against the WeChat Pay stand-in
on its own port (`bot.pay`); the share helpers (helpers.confirm_card) then pay after 确认 as a
giver would (tests/paying.py, Payer). Tests about free mode only are marked
@free_mode_only("why"); a test that passes its own [payments] keeps them.

Every event loop here is uvloop's, as in `serve` and `worker` (bot/app.py, run_loop).

PostgreSQL: GIFTBOT_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test);
each test gets its own schema, dropped afterwards. When the server is not
reachable those tests are skipped, and the run says so in its summary.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import io
import json
import logging
import os
import secrets
import sqlite3
import sys
import tempfile
import threading
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import peewee
import pytest
import requests
import tomli_w
import uvloop
from tornado.netutil import bind_sockets

ROOT = Path(__file__).resolve().parent.parent
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # what serve and worker run on
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes.sms_vendors import FakeWebhook  # noqa: E402
from fakes.wechat_api import APP_ID, APP_SECRET, FakeWeChat  # noqa: E402
from fakes.wechatpay import FakeWeChatPay  # noqa: E402
from helpers import PAID, PAYMENTS, WECHAT_UA  # noqa: E402
from paying import balance_holds, live_payer, pay_bot, pay_keys, pay_overrides, run_keys, unix  # noqa: E402, F401
from wechat_sim import WeChatSim  # noqa: E402

from bot import logs  # noqa: E402
from bot.app import Clock, Services  # noqa: E402
from bot.config import parse  # noqa: E402
from handlers.app import make_app, make_server  # noqa: E402
from storage import db as storage  # noqa: E402

# pay_bot and pay_keys, imported above, are fixtures: the bot in wechatpay mode (tests/paying.py)

PG_URL = os.environ.get("GIFTBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TOKEN = "testtoken0123456789"
COOKIE_SECRET = "test-cookie-secret-0123456789-abcdefghij"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ARTIFACTS = ROOT / "test-artifacts"


def example_config() -> dict:
    return tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))


def merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def pg_reachable() -> bool:
    try:
        db = peewee.PostgresqlDatabase(None)
        from playhouse.db_url import parse as parse_url

        db.init(**parse_url(PG_URL))
        db.connect()
        db.close()
        return True
    except Exception:
        return False


PG_OK = pg_reachable()
PG_SKIP = f"PostgreSQL not reachable at {PG_URL}: storage/concurrency tests skipped on it"


@pytest.fixture
def pg_schema_url():
    """A fresh PostgreSQL schema for one test; its URL sets the search_path."""
    if not PG_OK:
        pytest.skip(PG_SKIP)
    schema = f"t_{secrets.token_hex(6)}"
    admin = peewee.PostgresqlDatabase(None)
    from playhouse.db_url import parse as parse_url

    admin.init(**parse_url(PG_URL))
    admin.execute_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    # The suite tests behaviour, not the disk: its sessions commit without waiting for the WAL
    # to reach it (visible to every other session at once, as always); bench/ measures the
    # bot with PostgreSQL's default, synchronous commit.
    options = f"-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"
    yield f"{PG_URL}{sep}options={options}&application_name={schema}"
    # A server process of the test may still be dying (a killed parent's workers): end its
    # sessions first, or the DROP can deadlock with its last transaction.
    admin.execute_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (schema,),
    )
    admin.execute_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.close()


@pytest.fixture(params=["sqlite"])
def db_url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("pg_schema_url")
    return f"sqlite:///{tmp_path / 'bot.db'}"


def make_raw_config(db_url: str, public_url: str, **overrides) -> dict:
    """The example config on this database, served at `public_url` (a loopback one names the
    port the server listens on, as config requires of the sandbox)."""
    server = {"public_url": public_url, "sandbox": False, "cookie_secret": COOKIE_SECRET}
    if port := urlsplit(public_url).port:
        server["port"] = port
    raw = merge(
        example_config(),
        {
            "server": server,
            "database": {"url": db_url},
            "wechat": {"token": TOKEN, "app_id": APP_ID, "app_secret": APP_SECRET},
            "sms": {"retry_seconds": 1},
            "delivery": {"closed_dates": []},
        },
    )
    return merge(raw, overrides)


def make_config(db_url: str, public_url: str, **overrides):
    return parse(make_raw_config(db_url, public_url, **overrides))


_MIGRATED: list[Path] = []  # this process's SQLite database with every migration applied


def start_migrated(db_url: str) -> None:
    """A new SQLite database at `db_url` starts as a copy of one migrated once per process:
    migrating anew took about 0.1 s of every test that starts a bot. The bot's start-up still
    migrates, and finds nothing left to do. PostgreSQL's schemas are migrated as they are."""
    if not db_url.startswith("sqlite:///"):
        return
    path = Path(db_url.removeprefix("sqlite:///"))
    if path.exists():
        return  # a second bot on the same database
    if not _MIGRATED:
        folder = Path(tempfile.mkdtemp(prefix="giftbot-migrated-"))
        storage.connect(f"sqlite:///{folder / 'migrated.db'}")
        storage.migrate()
        storage.db.close()
        _MIGRATED.append(folder / "migrated.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(_MIGRATED[0]) as source, sqlite3.connect(path) as copy_:
        source.backup(copy_)
    source.close()
    copy_.close()


class LiveBot:
    """The real application on a real socket, served from its own thread and loop."""

    def __init__(self, config_overrides: dict, db_url: str):
        start_migrated(db_url)
        self.sockets = bind_sockets(0, "127.0.0.1")
        self.port = self.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.fake_wechat = FakeWeChat().start()
        self.sms = FakeWebhook().__enter__()
        self._media = tempfile.TemporaryDirectory(prefix="giftbot-media-")
        overrides = {
            "wechat": {
                "api_base": self.fake_wechat.url,
                "oauth_base": self.fake_wechat.url,
                "mp_base": self.fake_wechat.url,
            },
            "sms": {"backend": "webhook", "webhook_url": self.sms.url},
            "media": {"dir": self._media.name},  # greeting pictures and voices: this bot's own
        }
        # A paid run: WeChat Pay's stand-in on its own port, on this bot's clock; a test that
        # sets [payments] itself (pay_bot, a free-mode check) keeps its own.
        self.pay: FakeWeChatPay | None = None
        if PAID and "payments" not in config_overrides:
            self.pay = FakeWeChatPay(
                run_keys(), clock=lambda: unix(self), retry_scale=1e-4, answer_timeout=2
            ).__enter__()
            self._pay_folder = tempfile.TemporaryDirectory(prefix="giftbot-pay-")
            keys = pay_overrides(Path(self._pay_folder.name), run_keys(), self.pay)
            overrides = merge(overrides, keys)
        overrides = merge(overrides, config_overrides)
        self.raw_config = make_raw_config(db_url, self.url, **overrides)
        self.config = parse(self.raw_config)
        self.clock = Clock()
        self.wx = WeChatSim(
            self.url, TOKEN, APP_ID, aes_key=self.config.wechat.encoding_aes_key or ""
        )
        self.wx.clock = lambda: int(self.clock().replace(tzinfo=dt.UTC).timestamp())
        if self.pay:
            self.wx.payer = live_payer(self, self.pay)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError(f"server did not start: {getattr(self, 'error', None)!r}")

    async def _main(self) -> None:
        try:
            self.loop = asyncio.get_running_loop()
            self.services = Services.start(self.config, clock=self.clock)
            self.stop_event = asyncio.Event()
            self.app = make_app(self.services, port=self.port)
            server = make_server(self.app, self.config)
            server.add_sockets(self.sockets)
        except Exception as exc:  # reported by the constructor
            self.error = exc
            self._ready.set()
            raise
        self._ready.set()
        await self.stop_event.wait()
        server.stop()
        self.services.close()

    def run(self, coro, timeout: float = 30):
        """Run a coroutine on the server's loop (where its HTTP clients live)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def drain(self, rounds: int = 10) -> int:
        """Work the outbox now, until nothing is due; returns how many sends were tried."""
        total = 0
        for _ in range(rounds):
            done = self.run(self.services.worker.run_once())
            total += done
            if not done:
                break
        return total

    def session(self, openid: str | None = None) -> requests.Session:
        """A browser-like HTTP session; with openid, already through the fake OAuth as them."""
        s = requests.Session()
        s.headers["User-Agent"] = WECHAT_UA  # WeChat's browser: its login works there
        if openid:
            self.fake_wechat.set_user(openid)
        return s

    def tmp_config(self) -> str:
        """This server's config as a TOML file, for the command line."""
        fd, path = tempfile.mkstemp(suffix=".toml")
        with os.fdopen(fd, "wb") as f:
            tomli_w.dump(self.raw_config, f)
        return path

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self._thread.join(10)
        self.fake_wechat.stop()
        self.sms.__exit__(None, None, None)
        self._media.cleanup()
        if self.pay:
            self.pay.__exit__(None, None, None)
            self._pay_folder.cleanup()


@pytest.fixture
def bot_factory(db_url):
    started = []

    def start(**overrides) -> LiveBot:
        live = LiveBot(overrides, db_url)
        started.append(live)
        return live

    yield start
    try:
        if any(live.pay for live in started):
            balance_holds()  # a paid run: whatever the test did, paid = claimed + refunded + open
    finally:
        for live in started:
            live.stop()


@pytest.fixture
def bot(bot_factory) -> LiveBot:
    return bot_factory()


@pytest.fixture
def safe_bot(bot_factory) -> LiveBot:
    return bot_factory(wechat={"encoding_aes_key": AES_KEY})


@pytest.fixture
def round_trips(monkeypatch) -> list[str]:
    """From now on, the text of each round trip of the PostgreSQL jobs on the loop (and, as
    `send …` or the like, whatever a test appends between them)."""
    from storage import loop_connection

    texts: list[str] = []
    original = loop_connection.LoopCursor.execute

    def execute(self, sql, params=None):
        texts.append(sql.decode() if isinstance(sql, bytes) else sql)
        return original(self, sql, params)

    monkeypatch.setattr(loop_connection.LoopCursor, "execute", execute)
    return texts


@pytest.fixture
def log_lines():
    """Every log line the server writes during the test, as JSON objects, rendered as in production."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.formatter(json_lines=True))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def cluster(db_url, tmp_path):
    """Real `python -m bot serve` processes on one database (tests/cluster.py)."""
    from cluster import Cluster  # it builds on this module's config helpers

    running = Cluster(db_url, tmp_path)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def shop(tmp_path):
    """A config file on its own SQLite database, for the CLI (tests/shop.py)."""
    from shop import Shop

    shop = Shop(tmp_path)
    yield shop
    shop.close()


@pytest.fixture(scope="module")
def chromium():
    """Debian's headless Chromium through Playwright, one per test module (tests/browsing.py)."""
    from browsing import CHROMIUM
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def transcript(request):
    """Write a chat transcript to test-artifacts/transcripts/<test>.txt for people to read."""

    def save(wx: WeChatSim) -> Path:
        folder = ARTIFACTS / "transcripts"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{request.node.name}.txt"
        path.write_text(wx.transcript_text(), encoding="utf-8")
        return path

    return save


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "free_mode_only(reason): runs only in free mode (GIFTBOT_TEST_PAYMENTS unset)"
    )


# The files that take longest start first, so that `make test`'s two processes (pytest-xdist,
# a file to a process, `--no-loadscope-reorder`) end together rather than one waiting on the
# other's last file.
LONGEST_FIRST = ("test_share_life_properties.py", "test_properties.py", "test_fulfilment.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file keeps its own order
    if not PAID:
        return
    for item in items:
        if marker := item.get_closest_marker("free_mode_only"):
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"free mode only: {reason}"))


def pytest_report_header(config):
    return [
        f"PostgreSQL: {'reachable at ' + PG_URL if PG_OK else PG_SKIP}",
        f"payments: {PAYMENTS} (GIFTBOT_TEST_PAYMENTS)",
    ]
