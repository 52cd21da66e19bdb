"""A shop for command-line tests: config.example.toml on its own SQLite file, shares and
orders made in-process (as the chat and the web form make them), the CLI run for real in a
process of its own on the same file (forked by tests/launcher.py).

Usage::

    def test_x(shop):                                  # the fixture, in conftest.py
        share = shop.open().share("scarf", quantity=2)
        order = shop.order(share, "o_friend", variant="酒红色")
        lines(shop.cli("orders", "ship", order.order_no))
        shop.cli_json("catalogue", "list")
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import launcher
from conftest import example_config, merge
from helpers import write_config

from bot import users
from bot.config import Config, load
from bot.forms.delivery import delivery_slots
from bot.forms.order import OrderAnswers
from bot.gifting import catalogue, orders, shares
from bot.outgoing.notices import Notices
from bot.render import Renderer
from storage import db as storage
from storage.models import Order, Share, utcnow

XIAOHONG = {
    "name": "张小红",
    "phone": "+8613800138000",
    "address": {
        "region": "广东省深圳市南山区",
        "detail": "科技园南区 8 栋 1201",
        "province": "广东省",
        "city": "深圳市",
        "district": "南山区",
        "code": "440305",
    },
}


class Shop:
    """A config file on its own SQLite database, for the CLI and for in-process set-up."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.opened = False
        self.raw = merge(
            example_config(),
            {
                "database": {"url": f"sqlite:///{folder / 'bot.db'}"},
                "delivery": {"closed_dates": []},
            },
        )
        self.save()

    def save(self) -> None:
        """Write `raw` out, as an operator editing config.toml would."""
        self.path = write_config(self.folder, self.raw)
        self.config: Config = load(self.path)

    def gift(self, gift_id: str) -> dict:
        return next(g for g in self.raw["gifts"] if g["id"] == gift_id)

    def cli(self, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
        return launcher.run([*args, "--config", str(self.path)], cwd=self.folder, text=not binary)

    def cli_json(self, *args: str):
        result = self.cli(*args, "--format", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def open(self) -> Shop:
        """Bind the models to the shop's database in this process and sync the catalogue."""
        storage.connect(self.config.database.url)
        self.opened = True
        storage.migrate()
        catalogue.sync(self.config.gifts)
        return self

    def close(self) -> None:
        if self.opened:
            storage.db.close()

    def share(self, gift_id: str, quantity: int = 1, giver: str = "o_giver") -> Share:
        users.touch(giver)
        return shares.create(self.config, giver, gift_id, quantity, "生日快乐", utcnow())

    def order(self, share: Share, openid: str, **answers) -> Order:
        now = utcnow()
        slot = delivery_slots(self.config.delivery, now.replace(tzinfo=dt.UTC))[0]
        users.touch(openid)
        notices = Notices(self.config, Renderer(self.config))
        answers = {**XIAOHONG, "delivery": slot.key, **answers}
        typed = OrderAnswers.from_answers(answers, self.config.delivery.timezone)
        order, created = orders.place(notices, share.token, openid, typed, "web", now)
        assert created
        return order


def lines(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def stock_by_id(shop: Shop) -> dict[str, int]:
    return {g["id"]: g["stock"] for g in shop.cli_json("catalogue", "list")}
