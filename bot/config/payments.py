"""The rules of `[payments]`: the mode, the hold, and in `wechatpay` mode a merchant whose keys
load (or, in the /dev sandbox with no key paths, the built-in stand-in of WeChat Pay). WeChat
Pay's own signature is checked with its public key (`public_key_path` and `public_key_id`
both set) or, both left empty, with its platform certificates, downloaded at run time.

Usage::

    check_payments(config)     # raises ConfigError("payments.wechatpay.private_key_path", ...)
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.config.build import ConfigError
from bot.config.schema import Config

MODES = ("free", "wechatpay")
MCHID_RE = re.compile(r"^\d{6,32}$")
SERIAL_RE = re.compile(r"^[0-9A-Fa-f]{8,64}$")
KEY = "payments.wechatpay"


def uses_standin(config: Config) -> bool:
    """The sandbox plays the paid story against the built-in stand-in: no key paths given."""
    w = config.payments.wechatpay
    return config.server.sandbox and not w.private_key_path and not w.public_key_path


def check_payments(config: Config) -> None:
    p = config.payments
    if p.mode not in MODES:
        raise ConfigError("payments.mode", f"must be one of {', '.join(MODES)}, not {p.mode!r}")
    if not 1 <= p.hold_minutes <= 120:
        raise ConfigError("payments.hold_minutes", f"must be 1-120 minutes, not {p.hold_minutes}")
    w = p.wechatpay
    for name in ("timeout_seconds", "retry_seconds", "max_attempts", "reconcile_seconds"):
        if getattr(w, name) <= 0:
            raise ConfigError(f"{KEY}.{name}", f"must be greater than 0, not {getattr(w, name)}")
    if not p.paid or uses_standin(config):
        return
    parts = urlsplit(config.server.public_url)
    if parts.scheme != "https" and not config.server.is_loopback:
        raise ConfigError(
            "server.public_url", "must be https in wechatpay mode: WeChat Pay notifies only https"
        )
    if not MCHID_RE.match(w.mchid):
        raise ConfigError(f"{KEY}.mchid", "must be the merchant number (商户号): digits")
    if len(w.api_v3_key.encode()) != 32:
        raise ConfigError(f"{KEY}.api_v3_key", "must be 32 characters (the APIv3 key)")
    if not SERIAL_RE.match(w.cert_serial_no):
        raise ConfigError(f"{KEY}.cert_serial_no", "must be the API certificate's serial (hex)")
    load_private(w.private_key_path, f"{KEY}.private_key_path", config.path)
    check_public_key(config)
    parts = urlsplit(w.api_base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{KEY}.api_base", f"must be an absolute http(s) URL, not {w.api_base!r}")


def check_public_key(config: Config) -> None:
    """Both keys of WeChat Pay's public key, or neither (then platform certificates)."""
    w = config.payments.wechatpay
    if not w.public_key_path and not w.public_key_id:
        return
    if not w.public_key_id:
        raise ConfigError(
            f"{KEY}.public_key_id",
            "is needed with public_key_path (WeChat Pay's key id, PUB_KEY_ID_…); "
            "leave both empty to verify with platform certificates",
        )
    if not w.public_key_id.startswith("PUB_KEY_ID_"):
        raise ConfigError(f"{KEY}.public_key_id", "must be WeChat Pay's key id, PUB_KEY_ID_…")
    if not w.public_key_path:
        raise ConfigError(
            f"{KEY}.public_key_path",
            "is needed with public_key_id (WeChat Pay's public key, pub_key.pem); "
            "leave both empty to verify with platform certificates",
        )
    load_public(w.public_key_path, f"{KEY}.public_key_path", config.path)


def _read(path: str, key: str, config_path: Path | None) -> bytes:
    if not path:
        raise ConfigError(key, "is required in wechatpay mode")
    file = Path(path)
    if not file.is_absolute() and config_path is not None and not file.exists():
        file = config_path.parent / file
    try:
        return file.read_bytes()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}") from None


def load_private(path: str, key: str, config_path: Path | None = None) -> rsa.RSAPrivateKey:
    try:
        loaded = serialization.load_pem_private_key(_read(path, key, config_path), password=None)
    except (ValueError, TypeError):
        raise ConfigError(key, f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ConfigError(key, "must be an RSA key")
    return loaded


def load_public(path: str, key: str, config_path: Path | None = None) -> rsa.RSAPublicKey:
    try:
        loaded = serialization.load_pem_public_key(_read(path, key, config_path))
    except (ValueError, TypeError):
        raise ConfigError(key, f"{path} is not a PEM public key") from None
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise ConfigError(key, "must be an RSA key")
    return loaded
