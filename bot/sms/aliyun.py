"""Aliyun SMS (dysmsapi 2017-05-25) through its official SDK; see `bot.sms` for the contract."""

from __future__ import annotations

import asyncio
import json

from alibabacloud_dysmsapi20170525 import models as aliyun_models
from alibabacloud_dysmsapi20170525.client import Client as AliyunClient
from alibabacloud_tea_openapi import models as aliyun_openapi
from darabonba.exceptions import ResponseException, RetryError, UnretryableException

from bot.config import Aliyun
from bot.sms import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    Sender,
    SmsError,
    SmsMessage,
    failure,
    is_retryable_code,
    vendor_template,
)


class AliyunSender(Sender):
    """Aliyun dysmsapi SendSms through the official SDK (ACS3-HMAC-SHA256 signing)."""

    name = "aliyun"

    def __init__(self, cfg: Aliyun):
        self.cfg = cfg
        self._client = AliyunClient(
            aliyun_openapi.Config(
                access_key_id=cfg.access_key_id,
                access_key_secret=cfg.access_key_secret,
                endpoint=cfg.endpoint,
                protocol=cfg.protocol,
                connect_timeout=int(CONNECT_TIMEOUT * 1000),  # milliseconds
                read_timeout=int(READ_TIMEOUT * 1000),
            )
        )

    async def _deliver(self, msg: SmsMessage) -> str:
        return await asyncio.to_thread(self._send_blocking, msg)

    def _send_blocking(self, msg: SmsMessage) -> str:
        request = aliyun_models.SendSmsRequest(
            # "86138…" without "+": Aliyun takes it for mainland and abroad alike.
            phone_numbers=msg.phone.removeprefix("+"),
            sign_name=self.cfg.sign_name,
            template_code=vendor_template(msg, self.cfg.template_code, self.cfg.templates),
            template_param=json.dumps(
                {k: str(v) for k, v in msg.params.items()}, ensure_ascii=False
            ),  # numbers would be refused with isv.INVALID_JSON_PARAM
            out_id=msg.key,
        )
        try:
            body = self._client.send_sms(request).body
        except Exception as exc:  # the SDK raises many unrelated types
            raise _aliyun_error(exc, msg.phone) from None
        if body.code != "OK":  # business errors come back as HTTP 200
            raise failure(body.code or "BadResponse", body.message or "", msg.phone)
        return body.biz_id or body.request_id


def _aliyun_error(exc: Exception, phone: str) -> SmsError:
    if isinstance(exc, ResponseException):  # the vendor answered HTTP 4xx/5xx
        code = str(exc.code or f"HTTP{exc.status_code}")
        retryable = (exc.status_code or 0) >= 500 or exc.retry_after is not None
        return failure(
            code, exc.message, phone, retryable or is_retryable_code(code, str(exc.message))
        )
    if isinstance(exc, UnretryableException):  # only the SDK's *own* retries are over
        inner = exc.inner_exception
        if isinstance(inner, RetryError):  # refused, reset, timed out
            return failure("NetworkError", inner.message, phone)
        # An answer we cannot parse: a proxy's HTML error page, most likely.
        return failure("BadResponse", repr(inner), phone)
    return failure(type(exc).__name__, str(exc), phone, retryable=False)
