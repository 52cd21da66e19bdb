"""deploy/ stays true to the bot: the production config loads once its secrets come from the
environment (as systemd hands them over) and refuses to start without them; the units run
commands and options `python -m bot` has; the secrets file names only variables the bot reads;
nginx keeps /dev and /metrics from the world."""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SECRETS = {
    "GIFTBOT_COOKIE_SECRET": secrets.token_hex(32),
    "GIFTBOT_WECHAT_TOKEN": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
    "GIFTBOT_WECHAT_APP_SECRET": "0123456789abcdef0123456789abcdef",
    "GIFTBOT_SMS_ALIYUN_ACCESS_KEY_SECRET": "aliyun-secret-0123456789",
}


def secrets_file_variables() -> set[str]:
    text = (DEPLOY / "systemd" / "secrets.env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?(GIFTBOT_[A-Z0-9_]+)=", text, re.MULTILINE))


def test_the_production_config_loads_with_its_secrets_from_the_environment(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    config = load(DEPLOY / "config.production.toml.example")
    assert config.server.public_url.startswith("https://") and not config.server.sandbox
    assert config.server.cookie_secret == SECRETS["GIFTBOT_COOKIE_SECRET"]
    assert config.database.url.startswith("postgresql://"), "--workers 2 in the unit wants it"


def test_the_production_config_refuses_to_start_without_its_secrets(monkeypatch):
    for name in secrets_file_variables():
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as refused:
        load(DEPLOY / "config.production.toml.example")
    assert refused.value.key in {"server.cookie_secret", "wechat.token", "wechat.app_secret"}


def test_the_secrets_file_names_only_variables_the_bot_reads():
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "bot").rglob("*.py"))
    named = secrets_file_variables()
    assert set(SECRETS) <= named
    unknown = {name for name in named if name not in source and name.removeprefix("GIFTBOT_")
               .lower() not in source}  # fmt: skip
    assert not unknown, f"the bot reads no such variable: {sorted(unknown)}"


@pytest.mark.parametrize("unit", ["gift-bot.service", "gift-bot-worker.service"])
def test_each_unit_runs_a_command_the_bot_has(unit):
    text = (DEPLOY / "systemd" / unit).read_text(encoding="utf-8")
    (line,) = re.findall(r"^ExecStart=(.+)$", text, re.MULTILINE)
    argv = shlex.split(line)
    assert argv[:3] == ["/opt/gift-bot/.venv/bin/python", "-m", "bot"]
    command, options = argv[3], [a for a in argv[4:] if a.startswith("--")]
    help_text = subprocess.run(
        [sys.executable, "-m", "bot", command, "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    for option in options:
        assert option in help_text, f"{unit}: `{command}` has no {option}"
    assert "EnvironmentFile=/etc/gift-bot/secrets.env" in text


def test_nginx_keeps_the_sandbox_and_the_metrics_from_the_world():
    site = (DEPLOY / "nginx" / "gift-bot.conf").read_text(encoding="utf-8")
    for path in ("/dev", "/metrics"):
        block = re.search(r"location\s+[~^=]*\s*" + re.escape(path) + r"[^{]*\{([^}]*)\}", site)
        assert block and re.search(r"return\s+40[34]", block.group(1)), path
    assert "client_max_body_size" in site and "X-Real-IP" in site
