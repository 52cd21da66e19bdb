"""Aliyun SMS (dysmsapi 2017-05-25) through its official SDK; see `bot.outgoing.sms` for the contract.

SendSms is not idempotent (its doc: after a timeout, check the delivery records before
sending again); `went` reads them with QuerySendDetails, which takes one number and one
day (Beijing time) at a time, 50 records a page, and finds our send by its OutId. A record
means Aliyun took the SMS, whatever the carrier's receipt says (waiting, failed, delivered):
sending it again would not change that.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from alibabacloud_dysmsapi20170525 import models as aliyun_models
from alibabacloud_dysmsapi20170525.client import Client as AliyunClient
from alibabacloud_tea_openapi import models as aliyun_openapi
from darabonba.exceptions import ResponseException, RetryError, UnretryableException

from bot.config import Aliyun
from bot.outgoing.sms.base import CONNECT_TIMEOUT, Sender, SmsMessage, vendor_template
from bot.outgoing.sms.errors import SmsError, failure, is_retryable_code, network_failure

BEIJING = dt.timedelta(hours=8)  # SendDate is a day in China Standard Time
PAGE = 50  # QuerySendDetails' largest page
MOST_PAGES = 20  # a number gets at most 40-50 SMS a day from one account (the vendor's limits)
RECORDS_DAYS = 30  # how far back QuerySendDetails reaches
CLOCK_MARGIN = dt.timedelta(minutes=1)  # our clock and Aliyun's may differ at a day's edge


class AliyunSender(Sender):
    """Aliyun dysmsapi SendSms through the official SDK (ACS3-HMAC-SHA256 signing)."""

    name = "aliyun"
    checks = True

    def __init__(self, cfg: Aliyun, timeout: float):
        self.cfg = cfg
        self._client = AliyunClient(
            aliyun_openapi.Config(
                access_key_id=cfg.access_key_id,
                access_key_secret=cfg.access_key_secret,
                endpoint=cfg.endpoint,
                protocol=cfg.protocol,
                connect_timeout=int(min(CONNECT_TIMEOUT, timeout) * 1000),  # milliseconds
                read_timeout=int(timeout * 1000),
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

    async def _find(self, phone: str, key: str, since: dt.datetime, now: dt.datetime) -> bool:
        return await asyncio.to_thread(self._find_blocking, phone, key, since, now)

    def _find_blocking(self, phone: str, key: str, since: dt.datetime, now: dt.datetime) -> bool:
        number = records_number(phone)
        for day in send_dates(since, now):
            for page in range(1, MOST_PAGES + 1):
                details, total = self._records(number, day, page, phone)
                if any(d.out_id == key for d in details):
                    return True
                if not details or page * PAGE >= total:
                    break
        return False

    def _records(self, number: str, day: str, page: int, phone: str) -> tuple[list, int]:
        request = aliyun_models.QuerySendDetailsRequest(
            phone_number=number, send_date=day, page_size=PAGE, current_page=page
        )
        try:
            body = self._client.query_send_details(request).body
        except Exception as exc:
            raise _aliyun_error(exc, phone) from None
        if body.code != "OK":
            raise failure(body.code or "BadResponse", body.message or "", phone)
        shown = body.sms_send_detail_dtos
        details = (shown.sms_send_detail_dto if shown else None) or []
        return details, int(body.total_count or 0)


def records_number(phone: str) -> str:
    """How QuerySendDetails names a number: a mainland one by its 11 digits, any other with
    its country code (and no "+")."""
    return phone.removeprefix("+86") if phone.startswith("+86") else phone.removeprefix("+")


def send_dates(since: dt.datetime, now: dt.datetime) -> list[str]:
    """The SendDate values (yyyyMMdd, Beijing) a send made since `since` may carry."""
    first = max(since - CLOCK_MARGIN, now - dt.timedelta(days=RECORDS_DAYS - 1)) + BEIJING
    last = now + CLOCK_MARGIN + BEIJING
    days = (last.date() - first.date()).days
    return [(first + dt.timedelta(days=n)).strftime("%Y%m%d") for n in range(days + 1)]


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
            return network_failure(inner.message, phone)
        # An answer we cannot parse (a proxy's HTML error page, most likely): it may have gone.
        return failure("BadResponse", repr(inner), phone, in_doubt=True)
    return failure(type(exc).__name__, str(exc), phone, retryable=False)
