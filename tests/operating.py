"""The operator's command line run for real (`python -m bot …` in a process of its own) against a live
bot's config and database, and an order to run it on.

Usage in a test module::

    from operating import Operator, ordered_in_chat

    @pytest.fixture
    def operator(bot, tmp_path) -> Operator:
        return Operator(bot, tmp_path)       # the bot's config written to tmp_path

    def test_x(bot, operator):
        order = ordered_in_chat(bot)         # shared and claimed in chat: inside the 48 hours
        operator.ok("orders", "ship", order.order_no, "--no-tracking")   # exit 0; stdout lines
        operator("orders", "cancel", "NO")   # the CompletedProcess, whatever its exit
        operator("catalogue", "sync", config=other_path)   # another config file
        operator.json("orders", "export")    # with --format json, parsed
        operator.start("orders", "cancel", order.order_no)   # a Popen: two at once race
"""

from __future__ import annotations

import json
import subprocess
import sys

import launcher
from conftest import ROOT
from helpers import fill, say, share_in_chat, write_config

from storage.models import Order


class Operator:
    """`python -m bot …` in a process of its own (forked by tests/launcher.py, or started anew
    for `start`), on the live bot's config and database."""

    def __init__(self, bot, folder):
        self.bot = bot
        self.path = write_config(folder, bot.raw_config, "operator.toml")

    def __call__(self, *args: str, config=None) -> subprocess.CompletedProcess:
        return launcher.run([*args, "--config", str(config or self.path)], cwd=ROOT)

    def ok(self, *args: str) -> list[str]:
        result = self(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    def json(self, *args: str):
        return json.loads("\n".join(self.ok(*args, "--format", "json")))

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", *args, "--config", str(self.path)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        )  # fmt: skip


def ordered_in_chat(bot, recipient="o_friend", giver="o_giver", number="1") -> Order:
    """The giver shares in chat, the recipient claims in chat: both inside WeChat's window."""
    token = share_in_chat(bot, giver=giver, number=number)
    fill(bot, recipient, token)
    assert "订单号" in say(bot, recipient, "确认")
    return Order.get(Order.recipient == recipient)
