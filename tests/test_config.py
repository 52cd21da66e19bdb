"""A bad config file stops start-up with the key and the reason: through `bot.config.load`
and through the real command line (`python -m bot … --config PATH` exits 2), for a sample
of one case of each kind (see CLI_SAMPLE).

Each case starts from config.example.toml and breaks one thing::

    put("server.port", "8080")      # set a key (dotted, with [i] for array items)
    drop("wechat.token")            # remove a key
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT, example_config
from helpers import write_config

from bot.config import ConfigError, load, port_mismatch, with_port
from bot.words import MENU_KEYS

Change = Callable[[dict], dict]


# -- breaking one thing ----------------------------------------------------------


def _steps(dotted: str) -> list[str | int]:
    """ "menu.button[0].name" -> ["menu", "button", 0, "name"]."""
    return [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", dotted)]


def put(dotted: str, value) -> Change:
    def change(raw: dict) -> dict:
        raw = copy.deepcopy(raw)
        *parents, last = _steps(dotted)
        node = raw
        for step in parents:
            node = node.setdefault(step, {}) if isinstance(node, dict) else node[step]
        if isinstance(node, list) and last == len(node):
            node.append(value)
        else:
            node[last] = value
        return raw

    return change


def drop(dotted: str) -> Change:
    def change(raw: dict) -> dict:
        raw = copy.deepcopy(raw)
        *parents, last = _steps(dotted)
        node = raw
        for step in parents:
            node = node[step]
        del node[last]
        return raw

    return change


def both(*changes: Change) -> Change:
    def change(raw: dict) -> dict:
        for one in changes:
            raw = one(raw)
        return raw

    return change


def case(id: str, change: Change, key: str, reason: str):
    return pytest.param(change, key, reason, id=id)


def click(name: str, key: str) -> dict:
    return {"type": "click", "name": name, "key": key}


ALIYUN = {
    "access_key_id": "LTAI5tExample",
    "access_key_secret": "example-secret",
    "sign_name": "礼物小助手",
    "template_code": "SMS_123456789",
}
TENCENT = {
    "secret_id": "AKIDexample",
    "secret_key": "example-key",
    "sdk_app_id": "1400000000",
    "sign_name": "礼物小助手",
    "template_id": "123456",
}


def sms_vendor_missing(vendor: str, keys: dict) -> list:
    return [
        case(
            f"{vendor}-without-{key}",
            put("sms", {"backend": vendor, vendor: {k: v for k, v in keys.items() if k != key}}),
            f"sms.{vendor}.{key}",
            f"is required with backend {vendor}",
        )
        for key in keys
    ]


SUB_BUTTONS = [click(f"子菜单{i}", f"SUB_{i}") for i in range(5)]
MORE = {"name": "更多", "sub_button": [click("我收到的", "MY_ORDERS")]}

BROKEN = [
    # unknown keys
    case("unknown-top-level-key", put("colour", "red"), "colour", "unknown key"),
    case("unknown-server-key-prot", put("server.prot", 1), "server.prot", "unknown key"),
    case("unknown-gift-key", put("gifts[0].colour", "red"), "gifts[0].colour", "unknown key"),
    case(
        "unknown-aliyun-key",
        put("sms.aliyun", {"acess_key_id": "x"}),
        "sms.aliyun.acess_key_id",
        "unknown key",
    ),
    # required keys
    case("no-server-table", drop("server"), "server", "is required"),
    case("no-public-url", drop("server.public_url"), "server.public_url", "is required"),
    case("no-cookie-secret", drop("server.cookie_secret"), "server.cookie_secret", "is required"),
    case("no-wechat-token", drop("wechat.token"), "wechat.token", "is required"),
    case("no-wechat-app-id", drop("wechat.app_id"), "wechat.app_id", "is required"),
    case("no-wechat-app-secret", drop("wechat.app_secret"), "wechat.app_secret", "is required"),
    case("no-gifts", drop("gifts"), "gifts", "is required"),
    case("gift-without-name", drop("gifts[0].name"), "gifts[0].name", "is required"),
    # wrong types
    case("port-as-string", put("server.port", "8080"), "server.port", "must be an integer"),
    case("port-as-float", put("server.port", 8080.0), "server.port", "must be an integer"),
    case("price-as-float", put("gifts[0].price", 168.0), "gifts[0].price", "must be an integer"),
    case("stock-as-bool", put("gifts[0].stock", True), "gifts[0].stock", "must be an integer"),
    case("sandbox-as-yes", put("server.sandbox", "yes"), "server.sandbox", "must be true or false"),
    case(
        "expire-hours-as-string",
        put("shares.expire_hours", "72"),
        "shares.expire_hours",
        "must be a number",
    ),
    case(
        "slots-as-string",
        put("delivery.slots", "09:00-12:00"),
        "delivery.slots",
        "must be an array",
    ),
    case("server-as-string", put("server", "127.0.0.1"), "server", "must be a table"),
    case("gift-as-string", put("gifts[0]", "tea"), "gifts[0]", "must be a table"),
    # [server]
    case("port-zero", put("server.port", 0), "server.port", "must be 1-65535"),
    case("port-too-big", put("server.port", 70000), "server.port", "must be 1-65535"),
    case(
        "public-url-with-path",
        put("server.public_url", "http://127.0.0.1:8080/bot"),
        "server.public_url",
        "without a path",
    ),
    case(
        "public-url-ftp",
        put("server.public_url", "ftp://127.0.0.1"),
        "server.public_url",
        "absolute http/https URL",
    ),
    case(
        "public-url-without-scheme",
        put("server.public_url", "127.0.0.1:8080"),
        "server.public_url",
        "absolute http/https URL",
    ),
    case(
        "public-url-with-query",
        put("server.public_url", "http://127.0.0.1:8080?from=menu"),
        "server.public_url",
        "scheme and host only",
    ),
    case(
        "sandbox-on-public-host",
        put("server.public_url", "https://gift.example.com"),
        "server.sandbox",
        "loopback",
    ),
    case(
        "sandbox-port-differs-from-public-url",
        put("server.port", 8093),
        "server.port",
        "server.port is 8093 but server.public_url (http://127.0.0.1:8080) points at port 8080",
    ),
    case(
        "public-url-port-out-of-range",
        put("server.public_url", "http://127.0.0.1:99999"),
        "server.public_url",
        "no valid port",
    ),
    case(
        "short-cookie-secret",
        put("server.cookie_secret", "too-short"),
        "server.cookie_secret",
        "at least 16 characters",
    ),
    # [database]
    case(
        "database-mysql",
        put("database.url", "mysql://root@127.0.0.1/gifts"),
        "database.url",
        "sqlite:/// or postgresql://",
    ),
    # [wechat]
    case("token-with-space", put("wechat.token", "bad token!"), "wechat.token", "3-32 letters"),
    case("token-too-short", put("wechat.token", "ab"), "wechat.token", "3-32 letters"),
    case("token-too-long", put("wechat.token", "a" * 33), "wechat.token", "3-32 letters"),
    case("empty-app-id", put("wechat.app_id", ""), "wechat.app_id", "must not be empty"),
    case(
        "empty-app-secret",
        put("wechat.app_secret", ""),
        "wechat.app_secret",
        "must not be empty",
    ),
    case(
        "aes-key-42-chars",
        put("wechat.encoding_aes_key", "a" * 42),
        "wechat.encoding_aes_key",
        "must be 43 characters",
    ),
    case(
        "api-base-not-a-url",
        put("wechat.api_base", "api.weixin.qq.com"),
        "wechat.api_base",
        "absolute http/https URL",
    ),
    # [sms]
    case("unknown-sms-backend", put("sms.backend", "pigeon"), "sms.backend", "must be one of"),
    case(
        "webhook-without-url",
        put("sms", {"backend": "webhook"}),
        "sms.webhook_url",
        "absolute http/https URL",
    ),
    *sms_vendor_missing("aliyun", ALIYUN),
    *sms_vendor_missing("tencent", TENCENT),
    case("sms-retry-zero", put("sms.retry_seconds", 0), "sms.retry_seconds", "greater than 0"),
    case("sms-timeout-zero", put("sms.timeout_seconds", 0), "sms.timeout_seconds", "than 0"),
    case(
        "sms-records-lag-zero",
        put("sms.records_lag_seconds", 0),
        "sms.records_lag_seconds",
        "greater than 0",
    ),
    case(
        "tencent-template-id-not-a-number",
        put(
            "sms",
            {"backend": "tencent", "tencent": TENCENT | {"templates": {"login_code": "SMS_1"}}},
        ),
        "sms.tencent.templates.login_code",
        "must be digits",
    ),
    # [delivery]
    case(
        "slot-9-12",
        put("delivery.slots", ["9-12"]),
        "delivery.slots[0]",
        "must look like 09:00-12:00",
    ),
    case(
        "slot-09-12-without-minutes",
        put("delivery.slots", ["09-12"]),
        "delivery.slots[0]",
        "must look like 09:00-12:00",
    ),
    case(
        "slot-reversed",
        put("delivery.slots", ["09:00-12:00", "18:00-09:00"]),
        "delivery.slots[1]",
        "must end after it starts",
    ),
    case("no-slots", put("delivery.slots", []), "delivery.slots", "at least one slot"),
    case(
        "closed-date-feb-30",
        put("delivery.closed_dates", ["2027-02-30"]),
        "delivery.closed_dates[0]",
        "must be YYYY-MM-DD",
    ),
    case(
        "closed-date-without-dashes",
        put("delivery.closed_dates", ["20270101"]),
        "delivery.closed_dates[0]",
        "must be YYYY-MM-DD",
    ),
    case(
        "unknown-timezone",
        put("delivery.timezone", "Mars/Olympus_Mons"),
        "delivery.timezone",
        "unknown time zone",
    ),
    # [shares]
    case(
        "expire-hours-zero", put("shares.expire_hours", 0), "shares.expire_hours", "greater than 0"
    ),
    case(
        "expire-hours-negative",
        put("shares.expire_hours", -1.5),
        "shares.expire_hours",
        "greater than 0",
    ),
    case(
        "max-quantity-zero", put("shares.max_quantity", 0), "shares.max_quantity", "greater than 0"
    ),
    case(
        "max-quantity-negative",
        put("shares.max_quantity", -3),
        "shares.max_quantity",
        "greater than 0",
    ),
    # [[gifts]]
    case(
        "duplicate-gift-id",
        put("gifts[1].id", "tea-longjing"),
        "gifts[1].id",
        "duplicate gift id 'tea-longjing'",
    ),
    case("gift-id-with-space", put("gifts[0].id", "tea longjing"), "gifts[0].id", "1-32 letters"),
    case("empty-gifts", put("gifts", []), "gifts", "at least one [[gifts]] entry"),
    case("negative-stock", put("gifts[0].stock", -1), "gifts[0].stock", "must not be negative"),
    case("zero-price", put("gifts[0].price", 0), "gifts[0].price", "positive number of fen"),
    case("negative-price", put("gifts[3].price", -100), "gifts[3].price", "positive number of fen"),
    case(
        "image-relative-path",
        put("gifts[0].image", "gifts/tea.png"),
        "gifts[0].image",
        "a /static/ path or an http(s) URL",
    ),
    case(
        "duplicate-variants",
        put("gifts[2].variants", ["玫瑰", "向日葵", "玫瑰"]),
        "gifts[2].variants",
        "distinct",
    ),
    # the menu
    case(
        "four-top-buttons",
        put("menu.button[3]", click("帮助", "HELP")),
        "menu.button",
        "at most 3 top buttons",
    ),
    case(
        "six-sub-buttons",
        put("menu.button[2]", {**MORE, "sub_button": MORE["sub_button"] + SUB_BUTTONS}),
        "menu.button[2].sub_button",
        "at most 5 sub buttons",
    ),
    case(
        "top-name-18-bytes",
        put("menu.button[0].name", "送给朋友礼物"),
        "menu.button[0].name",
        "1-16 bytes",
    ),
    case("no-my-orders-button", drop("menu.button[2]"), "menu.button", "MY_ORDERS"),
    case("no-menu-buttons", put("menu.button", []), "menu.button", "needs buttons"),
    case(
        "view-button-bad-url",
        both(
            put("menu.button[2]", MORE),
            put(
                "menu.button[2].sub_button[1]", {"type": "view", "name": "官网", "url": "www.x.cn"}
            ),
        ),
        "menu.button[2].sub_button[1].url",
        "absolute http/https URL",
    ),
    case(
        "unknown-button-type",
        both(
            put("menu.button[2]", MORE),
            put("menu.button[2].sub_button[1]", {"type": "tap", "name": "点我", "key": "TAP"}),
        ),
        "menu.button[2].sub_button[1].type",
        "must be click or view",
    ),
    case(
        "my-orders-on-a-view-button",
        put(
            "menu.button[2]",
            {"type": "view", "name": "我收到的", "key": "MY_ORDERS", "url": "https://x.cn"},
        ),
        "menu.button",
        "no click button for MY_ORDERS",
    ),
]


# One case of each kind also goes through `python -m bot`: every start imports the whole
# bot (~1 s), and main() turns every ConfigError into the same exit 2 and message.
CLI_SAMPLE = {
    "unknown-server-key-prot",
    "no-wechat-app-secret",
    "port-as-string",
    "port-too-big",
    "sandbox-on-public-host",
    "sandbox-port-differs-from-public-url",
    "database-mysql",
    "aliyun-without-sign_name",
    "slot-reversed",
    "unknown-timezone",
    "duplicate-gift-id",
    "top-name-18-bytes",
    "view-button-bad-url",
}
CLI_BROKEN = [p for p in BROKEN if p.id in CLI_SAMPLE]
assert len(CLI_BROKEN) == len(CLI_SAMPLE), "a CLI_SAMPLE id names no case"


# -- through bot.config.load ------------------------------------------------------


@pytest.mark.parametrize(("change", "key", "reason"), BROKEN)
def test_broken_config_is_refused_with_key_and_reason(tmp_path, change, key, reason):
    path = write_config(tmp_path, change(example_config()))
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(info.value) == f"{key}: {info.value.reason}"


def test_missing_config_file_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nope.toml")
    assert info.value.key == "--config"
    assert "no such file" in info.value.reason
    assert "nope.toml" in info.value.reason


def test_invalid_toml_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[server]\nhost = "127.0.0.1"\nport = = 8080\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert "not valid TOML" in info.value.reason
    assert "line 3" in info.value.reason


def test_example_config_loads_as_is():
    config = load(ROOT / "config.example.toml")
    assert len(config.gifts) >= 6
    keys = {b.key for b in config.menu.button} | {
        s.key for b in config.menu.button for s in b.sub_button
    }
    assert set(MENU_KEYS) <= keys
    assert config.server.sandbox is True
    assert config.server.is_loopback


def test_another_port_takes_a_loopback_public_url_with_it_and_leaves_a_public_one():
    example = load(ROOT / "config.example.toml")
    moved = with_port(example, 8093)
    assert (moved.server.port, moved.server.public_url) == (8093, "http://127.0.0.1:8093")
    assert port_mismatch(moved.server) is None
    ipv6 = with_port(load_raw(put("server.public_url", "http://[::1]:8080")), 8094)
    assert ipv6.server.public_url == "http://[::1]:8094"
    public = both(PUBLIC, put("server.public_url", "https://gift.example.com"))(EXAMPLE)
    proxied = with_port(load_raw(lambda raw: public), 8093)
    assert (proxied.server.port, proxied.server.public_url) == (8093, "https://gift.example.com")


def test_a_loopback_public_url_on_another_port_is_a_warning_without_the_sandbox():
    config = load_raw(both(PUBLIC, put("server.public_url", "http://127.0.0.1:8080"),
                           put("server.port", 8093)))  # fmt: skip
    assert port_mismatch(config.server) == (
        "server.port is 8093 but server.public_url (http://127.0.0.1:8080) points at port 8080"
    )
    behind_a_proxy = load_raw(both(PUBLIC, put("server.port", 8093)))
    assert port_mismatch(behind_a_proxy.server) is None
    no_port = load_raw(both(PUBLIC, put("server.public_url", "http://localhost")))
    assert "points at port 80" in port_mismatch(no_port.server)


def load_raw(change: Change):
    from bot.config import parse

    return parse(change(example_config()))


def test_fractional_expire_hours_is_accepted(tmp_path):
    path = write_config(tmp_path, put("shares.expire_hours", 0.5)(example_config()))
    assert load(path).shares.expire_hours == 0.5


# -- through the command line -----------------------------------------------------


def bot_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


@pytest.fixture(scope="module")
def cli_refusals(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """`catalogue list` on each sampled broken config, run side by side."""
    runs = {}
    for param in CLI_BROKEN:
        change, _key, _reason = param.values
        folder = tmp_path_factory.mktemp(param.id)
        path = write_config(folder, change(example_config()))
        runs[param.id] = (path, folder)
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        futures = {
            name: pool.submit(bot_cli, "catalogue", "list", "--config", str(path), cwd=folder)
            for name, (path, folder) in runs.items()
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize(("change", "key", "reason"), CLI_BROKEN)
def test_command_line_refuses_broken_config_with_exit_2(request, cli_refusals, change, key, reason):
    result = cli_refusals[request.node.callspec.id]
    assert result.returncode == 2, result.stderr
    assert f"config error: {key}: " in result.stderr
    assert reason in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_command_line_refuses_missing_config_file(tmp_path):
    result = bot_cli("catalogue", "list", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "config error: --config: no such file" in result.stderr
    assert "nope.toml" in result.stderr


def test_command_line_without_config_toml_in_cwd_says_so(tmp_path):
    result = bot_cli("catalogue", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert "config error: --config: no such file: config.toml" in result.stderr
    assert "cp config.example.toml config.toml" in result.stderr
    assert "--config config.example.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_command_line_refuses_invalid_toml(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[server\nport = 8080\n", encoding="utf-8")
    result = bot_cli("catalogue", "list", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "config error: (file): " in result.stderr
    assert "not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr


# -- a config that serves the public -----------------------------------------------

STRONG_SECRETS = both(
    put("server.cookie_secret", "k3Jx9-QmT2vL8sWn4pRz7yBc1dFh6gAe"),
    put("wechat.token", "Qm7Tz2Lx9Vn4Pc8R"),
    put("wechat.app_secret", "3f9a7c2e8b1d4f6a0c5e9b7d2a4f8c1e"),
)
PUBLIC = both(
    STRONG_SECRETS,
    put("server.public_url", "https://gift.example.com"),
    put("server.sandbox", False),
)
EXAMPLE = example_config()


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        case(
            "example-cookie-secret",
            both(PUBLIC, put("server.cookie_secret", EXAMPLE["server"]["cookie_secret"])),
            "server.cookie_secret",
            "config.example.toml",
        ),
        case(
            "example-token",
            both(PUBLIC, put("wechat.token", EXAMPLE["wechat"]["token"])),
            "wechat.token",
            "config.example.toml",
        ),
        case(
            "example-app-secret",
            both(PUBLIC, put("wechat.app_secret", EXAMPLE["wechat"]["app_secret"])),
            "wechat.app_secret",
            "config.example.toml",
        ),
        case(
            "sandbox-off-on-loopback-is-public-too",
            both(put("server.sandbox", False), put("wechat.token", "Qm7Tz2Lx9Vn4Pc8R")),
            "server.cookie_secret",
            "config.example.toml",
        ),
        case(
            "short-cookie-secret",
            both(PUBLIC, put("server.cookie_secret", "0123456789abcdef")),
            "server.cookie_secret",
            "too weak",
        ),
        case(
            "repetitive-cookie-secret",
            both(PUBLIC, put("server.cookie_secret", "ab" * 20)),
            "server.cookie_secret",
            "too weak",
        ),
        case(
            "short-token",
            both(PUBLIC, put("wechat.token", "abc123")),
            "wechat.token",
            "too weak",
        ),
    ],
)
def test_a_public_config_refuses_example_and_weak_secrets(tmp_path, change, key, reason):
    with pytest.raises(ConfigError) as info:
        load(write_config(tmp_path, change(EXAMPLE)))
    assert (info.value.key, reason in info.value.reason) == (key, True)
    assert EXAMPLE["server"]["cookie_secret"] not in str(info.value), "a secret is never echoed"


def test_the_example_config_runs_as_is_because_its_sandbox_is_loopback_only():
    config = load(ROOT / "config.example.toml")
    assert config.server.sandbox and not config.server.is_public


def test_secrets_may_come_from_the_environment_instead_of_the_file(tmp_path, monkeypatch):
    raw = drop("server.cookie_secret")(drop("wechat.app_secret")(PUBLIC(EXAMPLE)))
    path = write_config(tmp_path, raw)
    with pytest.raises(ConfigError):
        load(path)
    monkeypatch.setenv("GIFTBOT_COOKIE_SECRET", "k3Jx9-QmT2vL8sWn4pRz7yBc1dFh6gAe-env")
    monkeypatch.setenv("GIFTBOT_WECHAT_APP_SECRET", "env-app-secret-0123456789abcdef")
    monkeypatch.setenv("GIFTBOT_WECHAT_TOKEN", "EnvToken0123456789")
    config = load(path)
    assert config.server.cookie_secret.endswith("-env")
    assert config.wechat.app_secret == "env-app-secret-0123456789abcdef"
    assert config.wechat.token == "EnvToken0123456789", "the environment wins over the file"


def test_the_example_secrets_rule_knows_the_example_files_values():
    from bot.config.rules import EXAMPLE_SECRETS

    for dotted, value in EXAMPLE_SECRETS.items():
        table, key = dotted.split(".")
        assert EXAMPLE[table][key] == value, dotted


def test_serve_refuses_a_public_config_with_the_example_secret_exit_2(tmp_path):
    raw = both(PUBLIC, put("server.cookie_secret", EXAMPLE["server"]["cookie_secret"]))(EXAMPLE)
    path = write_config(tmp_path, raw)
    result = bot_cli("serve", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "config error: server.cookie_secret: " in result.stderr
    assert EXAMPLE["server"]["cookie_secret"] not in result.stderr
