"""The rules across keys that types alone cannot say: URLs, ranges, WeChat's menu limits,
what delivery slots look like, which SMS keys a backend needs.

Usage::

    check(config)     # raises ConfigError(key, reason) at the first broken rule
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from urllib.parse import urlsplit

from bot.config.build import ConfigError, check_url, positive
from bot.config.payments import check_payments
from bot.config.schema import (
    Config,
    Database,
    Delivery,
    Gift,
    Menu,
    MenuButton,
    Server,
    WeChat,
    is_loopback_host,
)
from bot.config.sms import check_sms
from bot.config.startup import check_images
from bot.config.themes import check_themes
from bot.words import MENU_KEYS

SLOT_RE = re.compile(r"^\d{2}:\d{2}-\d{2}:\d{2}$")  # what delivery slot keys are made of
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SWAP_MODES = ("off", "same_price", "up_to_price")  # [shares] swap


# The secrets config.example.toml ships with: published, so never good enough for the public.
EXAMPLE_SECRETS = {
    "server.cookie_secret": "dev-only-cookie-secret-change-me",
    "wechat.token": "giftbotdevtoken",
    "wechat.app_secret": "dev-app-secret",
}
# What a secret that guards the public needs at least: length, and not one character repeated.
STRONG = {"server.cookie_secret": 32, "wechat.token": 16}


def check(c: Config) -> None:
    """Every rule, table by table; the first broken one raises."""
    _check_server(c.server)
    if c.server.is_public:
        _check_secrets(c)
    _check_database(c.database)
    _check_wechat(c.wechat)
    check_sms(c.sms)
    positive("shares.expire_hours", c.shares.expire_hours)
    positive("shares.max_quantity", c.shares.max_quantity)
    positive("shares.blessing_max_length", c.shares.blessing_max_length)
    positive("shares.max_open_units_per_giver", c.shares.max_open_units_per_giver)
    positive("shares.max_shares_per_hour", c.shares.max_shares_per_hour)
    positive("shares.thanks_max_length", c.shares.thanks_max_length)
    positive("shares.draw_hours", c.shares.draw_hours)
    if c.shares.swap not in SWAP_MODES:
        raise ConfigError(
            "shares.swap", f"must be one of {', '.join(SWAP_MODES)}, not {c.shares.swap!r}"
        )
    if not c.media.dir.strip():
        raise ConfigError("media.dir", "must name a folder")
    if c.shares.remind_hours < 0:
        raise ConfigError("shares.remind_hours", "must not be negative (0 turns reminders off)")
    _check_delivery(c.delivery)
    positive("conversation.timeout_minutes", c.conversation.timeout_minutes)
    _check_gifts(c.gifts)
    check_themes(c.themes)
    check_images(c.gifts)
    _check_menu(c.menu)
    check_payments(c)


def _check_server(s: Server):
    check_url("server.public_url", s.public_url)
    parts = urlsplit(s.public_url)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("server.public_url", "must be scheme and host only, without a path")
    try:
        parts.port  # noqa: B018 (it raises for a port out of range)
    except ValueError:
        raise ConfigError("server.public_url", f"has no valid port: {s.public_url!r}") from None
    if not 0 < s.port < 65536:
        raise ConfigError("server.port", f"must be 1-65535, not {s.port}")
    if len(s.cookie_secret) < 16:
        raise ConfigError("server.cookie_secret", "must be at least 16 characters")
    if s.sandbox and not s.is_loopback:
        raise ConfigError(
            "server.sandbox", "is only allowed when server.public_url is a loopback address"
        )
    if s.sandbox and (mismatch := port_mismatch(s)):
        raise ConfigError(
            "server.port",
            f"{mismatch}; with server.sandbox on every link of the sandbox would miss the "
            "server: make server.port and the port of server.public_url the same "
            "(`make run PORT=…` and `serve --port …` change both)",
        )
    if s.sandbox and not is_loopback_host(s.host):
        raise ConfigError(
            "server.host",
            f"must be a loopback address (127.0.0.1, ::1, localhost) while server.sandbox is on, "
            f"not {s.host!r}: the sandbox logs in as anyone",
        )


def port_mismatch(s: Server) -> str | None:
    """Why a loopback public_url cannot reach the port served, or None. Only a loopback URL
    must name the same port: a public one is a proxy's address, on a port of its own."""
    if not s.is_loopback:
        return None
    parts = urlsplit(s.public_url)
    url_port = parts.port or (443 if parts.scheme == "https" else 80)
    if url_port == s.port:
        return None
    return (
        f"server.port is {s.port} but server.public_url ({s.public_url}) points at port {url_port}"
    )


def _check_secrets(c: Config):
    """A config that serves the public refuses the example's secrets and weak ones."""
    values = {
        "server.cookie_secret": c.server.cookie_secret,
        "wechat.token": c.wechat.token,
        "wechat.app_secret": c.wechat.app_secret,
    }
    for key, value in values.items():
        if value == EXAMPLE_SECRETS[key]:
            raise ConfigError(
                key, "is still the value of config.example.toml, which anyone can read: "
                "set a long random one (or the GIFTBOT_… environment variable)",
            )  # fmt: skip
        least = STRONG.get(key)
        if least and (len(value) < least or len(set(value)) < least // 4):
            raise ConfigError(
                key, f"is too weak to serve the public: use {least}+ random characters"
            )


def _check_database(d: Database):
    if not d.url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError("database.url", "must start with sqlite:/// or postgresql://")
    if not 1 <= d.threads <= 64:
        raise ConfigError("database.threads", f"must be 1-64, not {d.threads}")


def _check_wechat(w: WeChat):
    if not w.token or not w.token.isalnum() or not 3 <= len(w.token) <= 32:
        raise ConfigError("wechat.token", "must be 3-32 letters or digits, as WeChat requires")
    for key in ("app_id", "app_secret"):
        if not getattr(w, key).strip():
            raise ConfigError(f"wechat.{key}", "must not be empty")
    if w.encoding_aes_key and len(w.encoding_aes_key) != 43:
        raise ConfigError(
            "wechat.encoding_aes_key", "must be 43 characters (or empty for plaintext mode)"
        )
    check_url("wechat.api_base", w.api_base)
    check_url("wechat.oauth_base", w.oauth_base)
    check_url("wechat.mp_base", w.mp_base)
    positive("wechat.timeout_seconds", w.timeout_seconds)
    positive("wechat.retry_seconds", w.retry_seconds)
    positive("wechat.max_attempts", w.max_attempts)


def _check_delivery(d: Delivery):
    positive("delivery.days_ahead", d.days_ahead)
    if d.lead_hours < 0:
        raise ConfigError("delivery.lead_hours", "must not be negative")
    if not d.slots:
        raise ConfigError("delivery.slots", "needs at least one slot")
    for i, slot in enumerate(d.slots):
        try:
            if not SLOT_RE.match(slot):
                raise ValueError(slot)
            start, end = (dt.time.fromisoformat(t) for t in slot.split("-"))
        except ValueError:
            raise ConfigError(
                f"delivery.slots[{i}]", f"must look like 09:00-12:00, not {slot!r}"
            ) from None
        if start >= end:
            raise ConfigError(f"delivery.slots[{i}]", "must end after it starts")
    for i, day in enumerate(d.closed_dates):
        try:
            if not DATE_RE.match(day):
                raise ValueError(day)
            dt.date.fromisoformat(day)
        except ValueError:
            raise ConfigError(
                f"delivery.closed_dates[{i}]", f"must be YYYY-MM-DD, not {day!r}"
            ) from None
    try:
        zoneinfo.ZoneInfo(d.timezone)
    except (KeyError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ConfigError("delivery.timezone", f"unknown time zone {d.timezone!r}") from None


def _check_gifts(gifts: list[Gift]):
    if not gifts:
        raise ConfigError("gifts", "the catalogue needs at least one [[gifts]] entry")
    seen = set()
    for i, g in enumerate(gifts):
        key = f"gifts[{i}]"
        if not g.id or not g.id.replace("-", "").replace("_", "").isalnum() or len(g.id) > 32:
            raise ConfigError(f"{key}.id", "must be 1-32 letters, digits, - or _")
        if g.id in seen:
            raise ConfigError(f"{key}.id", f"duplicate gift id {g.id!r}")
        seen.add(g.id)
        if not g.name.strip() or len(g.name) > 32:
            raise ConfigError(f"{key}.name", "must be 1-32 characters")
        if g.price <= 0:
            raise ConfigError(f"{key}.price", "must be a positive number of fen (分)")
        if g.stock < 0:
            raise ConfigError(f"{key}.stock", "must not be negative")
        if not g.image.startswith(("/static/", "https://", "http://")):
            raise ConfigError(f"{key}.image", "must be a /static/ path or an http(s) URL")
        if len(set(g.variants)) != len(g.variants) or any(not v.strip() for v in g.variants):
            raise ConfigError(f"{key}.variants", "must be distinct, non-empty names")


def _check_menu(menu: Menu):
    buttons = menu.button
    if not buttons:
        raise ConfigError("menu.button", f"needs buttons for {', '.join(MENU_KEYS)}")
    if len(buttons) > 3:
        raise ConfigError("menu.button", f"WeChat allows at most 3 top buttons, not {len(buttons)}")
    keys = []
    for i, b in enumerate(buttons):
        where = f"menu.button[{i}]"
        _check_button(where, b, top=True)
        if len(b.sub_button) > 5:
            raise ConfigError(f"{where}.sub_button", "WeChat allows at most 5 sub buttons")
        for j, sub in enumerate(b.sub_button):
            _check_button(f"{where}.sub_button[{j}]", sub, top=False)
        keys += [x.key for x in (b, *b.sub_button) if x.type == "click" and not x.sub_button]
    missing = [k for k in MENU_KEYS if k not in keys]
    if missing:
        raise ConfigError("menu.button", f"no click button for {', '.join(missing)}")


def _check_button(where, b: MenuButton, top: bool):
    limit = 16 if top else 60
    if not b.name or len(b.name.encode()) > limit:
        raise ConfigError(f"{where}.name", f"must be 1-{limit} bytes in UTF-8 (WeChat's limit)")
    if b.sub_button:
        if not top:
            raise ConfigError(f"{where}.sub_button", "WeChat allows only one level of sub buttons")
        return
    if b.type == "click":
        if not b.key or len(b.key.encode()) > 128:
            raise ConfigError(f"{where}.key", "a click button needs a key of 1-128 bytes")
    elif b.type == "view":
        check_url(f"{where}.url", b.url)
        if len(b.url.encode()) > 1024:
            raise ConfigError(f"{where}.url", "must be at most 1024 bytes")
    else:
        raise ConfigError(f"{where}.type", "must be click or view")
