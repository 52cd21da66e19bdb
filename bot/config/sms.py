"""`[sms]` checked: the backend and what it needs, the vendors' templates, the limits.

Usage::

    check_sms(config.sms)        # raises ConfigError("sms.tencent.template_id", "must be digits…")
"""

from __future__ import annotations

from bot.config.build import ConfigError, check_url, positive
from bot.config.schema import Sms
from bot.sms_kinds import SMS_TEMPLATES

SMS_BACKENDS = ("console", "webhook", "aliyun", "tencent")
_SMS_REQUIRED = {
    "aliyun": ("access_key_id", "access_key_secret", "sign_name", "template_code"),
    "tencent": ("secret_id", "secret_key", "sdk_app_id", "sign_name", "template_id"),
}


def check_sms(s: Sms):
    if s.backend not in SMS_BACKENDS:
        raise ConfigError("sms.backend", f"must be one of {', '.join(SMS_BACKENDS)}")
    if s.backend == "webhook":
        check_url("sms.webhook_url", s.webhook_url)
    for key in _SMS_REQUIRED.get(s.backend, ()):
        if not getattr(getattr(s, s.backend), key):
            raise ConfigError(f"sms.{s.backend}.{key}", f"is required with backend {s.backend}")
    tencent_ids = {"sms.tencent.template_id": s.tencent.template_id}
    tencent_ids |= {f"sms.tencent.templates.{n}": t for n, t in s.tencent.templates.items()}
    for key, template_id in tencent_ids.items():
        if template_id and not template_id.isdigit():  # Tencent numbers its templates
            raise ConfigError(key, f"must be digits, not {template_id!r}")
    for vendor in ("aliyun", "tencent"):
        if getattr(s, vendor).protocol not in ("http", "https"):
            raise ConfigError(f"sms.{vendor}.protocol", "must be http or https")
        for name in getattr(s, vendor).templates:
            if name not in SMS_TEMPLATES or name == "order_placed":
                known = ", ".join(n for n in SMS_TEMPLATES if n != "order_placed")
                raise ConfigError(f"sms.{vendor}.templates.{name}", f"must be one of {known}")
    positive("sms.retry_seconds", s.retry_seconds)
    positive("sms.max_attempts", s.max_attempts)
    positive("sms.codes_per_share_hour", s.codes_per_share_hour)
    positive("sms.codes_per_hour", s.codes_per_hour)
    positive("sms.timeout_seconds", s.timeout_seconds)
    positive("sms.records_lag_seconds", s.records_lag_seconds)
