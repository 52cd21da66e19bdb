"""Load and check `config.toml`.

Usage::

    config = load("config.toml")        # raises ConfigError("gifts[2].price", "must be ...")
    config.wechat.token, config.gifts[0].name

Every table is a dataclass; its fields are the allowed keys, their annotations
the expected types, a missing default means "required". Unknown keys, wrong
types and broken cross-key rules all stop start-up with the key and the reason.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from bot.config.build import ConfigError, build
from bot.config.rules import check, port_mismatch
from bot.config.schema import (
    Aliyun,
    Config,
    Conversation,
    Database,
    Delivery,
    Gift,
    Media,
    Menu,
    MenuButton,
    Payments,
    Server,
    Shares,
    Sms,
    Support,
    Tencent,
    Theme,
    WeChat,
    WeChatPay,
    is_loopback_host,
)

__all__ = [
    "SECRET_ENV", "Aliyun", "Config", "ConfigError", "Conversation", "Database", "Delivery",
    "Gift", "Media", "Menu", "MenuButton", "Payments", "Server", "Shares", "Sms", "Support", "Tencent", "Theme", "WeChat",
    "WeChatPay", "is_loopback_host", "load", "parse", "port_mismatch", "with_port",
]  # fmt: skip

# Secrets may come from the environment instead of the file (which then need not hold them);
# a variable that is set wins over the file.
SECRET_ENV = {
    "GIFTBOT_COOKIE_SECRET": ("server", "cookie_secret"),
    "GIFTBOT_DATABASE_URL": ("database", "url"),
    "GIFTBOT_WECHAT_TOKEN": ("wechat", "token"),
    "GIFTBOT_WECHAT_APP_SECRET": ("wechat", "app_secret"),
    "GIFTBOT_WECHAT_ENCODING_AES_KEY": ("wechat", "encoding_aes_key"),
    "GIFTBOT_SMS_ALIYUN_ACCESS_KEY_SECRET": ("sms", "aliyun", "access_key_secret"),
    "GIFTBOT_SMS_TENCENT_SECRET_KEY": ("sms", "tencent", "secret_key"),
    "GIFTBOT_WECHATPAY_API_V3_KEY": ("payments", "wechatpay", "api_v3_key"),
}


def load(path: str | Path) -> Config:
    """Read, type-check and cross-check a config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("--config", f"no such file: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("(file)", f"{path} is not valid TOML: {exc}") from None
    return parse(raw, path)


def parse(raw: dict, path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Check a config table (and the secrets in `environ`, by default the process's)."""
    raw = with_secrets(raw, os.environ if environ is None else environ)
    config = build(Config, raw, "", skip={"path"})
    config = dataclasses.replace(config, path=path)
    check(config)
    return config


def with_port(config: Config, port: int) -> Config:
    """The config served on `port` (`serve --port`, `make run PORT=…`). A loopback public_url
    is this very server, so its port follows; a public one is a proxy's and stays."""
    server = dataclasses.replace(config.server, port=port)
    if server.is_loopback:
        parts = urlsplit(server.public_url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        server = dataclasses.replace(server, public_url=f"{parts.scheme}://{host}:{port}")
    config = dataclasses.replace(config, server=server)
    check(config)
    return config


def with_secrets(raw: dict, environ: Mapping[str, str]) -> dict:
    """The config table with each secret named in SECRET_ENV taken from the environment."""
    raw = copy.deepcopy(raw)
    for name, (*tables, key) in SECRET_ENV.items():
        if name not in environ:
            continue
        table = raw
        for part in tables:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(".".join(tables), "must be a table")
        table[key] = environ[name]
    return raw
