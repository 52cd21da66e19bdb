"""Real `python -m bot serve` processes on one database, for the tests of crashes, concurrency
and `serve --workers N`: the SMS webhook and the WeChat API are faked in the test's process.

Usage::

    def test_x(cluster):                         # db_url picks SQLite or PostgreSQL
        server = cluster.start("one")            # `serve` on a free port; or workers=3
        server.wx.text("o_a", "礼品")            # WeChat, as the simulator plays it
        server.kill(); server.start()            # a crash (SIGKILL), then back up
        cluster.wait_for_sms(1)

Servers are killed with SIGKILL at teardown. In a paid run (GIFTBOT_TEST_PAYMENTS=wechatpay)
every server is in wechatpay mode against one WeChat Pay stand-in (`cluster.pay`), unless its
overrides set [payments]; its `wx` pays after 确认 in helpers.confirm_card.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import tomli_w
from conftest import APP_ID, TOKEN, make_raw_config, merge
from fakes.sms_vendors import FakeWebhook
from fakes.wechat_api import FakeWeChat
from fakes.wechatpay import FakeWeChatPay
from helpers import PAID, free_port
from paying import pay_overrides, run_keys, serve_payer
from wechat_sim import WeChatSim

from storage import db as storage
from storage.models import Outbox

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 20
SEND_SECONDS = 10


class Server:
    """One `python -m bot serve` child process; `wx` talks to it as WeChat does."""

    def __init__(self, cluster: Cluster, name: str, workers: int = 1, **overrides):
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        raw = make_raw_config(
            cluster.db_url,
            self.url,
            server={"host": "127.0.0.1", "port": self.port},
            wechat={"api_base": cluster.wechat.url, "oauth_base": cluster.wechat.url},
            sms={"backend": "webhook", "webhook_url": cluster.sms.url},
        )
        paid = cluster.pay and "payments" not in overrides
        if paid:
            raw = merge(raw, pay_overrides(cluster.folder, run_keys(), cluster.pay))
        raw = merge(raw, overrides)  # e.g. payments={...}: the same for every server
        self.config_path = cluster.folder / f"{name}.toml"
        self.config_path.write_bytes(tomli_w.dumps(raw).encode())
        self.log_path = cluster.folder / f"{name}.log"
        self.wx = WeChatSim(self.url, TOKEN, APP_ID)
        if paid:
            self.wx.payer = serve_payer(self, cluster.pay, cluster.wechat)
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--config", str(self.config_path),
                 "--workers", str(self.workers)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                up = requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except (requests.ConnectionError, requests.Timeout):  # bound, not yet answering
                up = False
            if up and self.log_path.read_text().count('"listening"') >= self.workers:
                return self
            time.sleep(0.05)
        raise RuntimeError(
            f"server not up in {START_SECONDS}s: {self.log_path.read_text()[-2000:]}"
        )

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown handler runs."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class Cluster:
    def __init__(self, db_url: str, folder: Path):
        self.db_url = db_url
        self.folder = folder
        self.wechat = FakeWeChat().start()
        self.sms = FakeWebhook().__enter__()
        self.pay = FakeWeChatPay(run_keys(), retry_scale=1e-4, answer_timeout=2) if PAID else None
        if self.pay:
            self.pay.__enter__()
        self.servers: list[Server] = []

    def start(self, name: str, workers: int = 1, **overrides) -> Server:
        server = Server(self, name, workers, **overrides)
        self.servers.append(server)
        server.start()
        if len(self.servers) == 1:
            storage.connect(self.db_url)  # the schema exists now: read it from the test
        return server

    def wait_for_sms(self, count: int) -> list[dict]:
        """What the webhook received once `count` SMS arrived and the outbox has no pending row
        (or the wait ran out). A row is sent only while pending, so with none left every send,
        a duplicate included, has already reached the webhook."""
        deadline = time.monotonic() + SEND_SECONDS
        while time.monotonic() < deadline:
            pending = Outbox.select().where(Outbox.status == "pending").exists()
            if len(self.sms.received) >= count and not pending:
                break
            time.sleep(0.1)
        return list(self.sms.received)

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        storage.db.close()
        self.wechat.stop()
        self.sms.__exit__(None, None, None)
        if self.pay:
            self.pay.__exit__(None, None, None)
