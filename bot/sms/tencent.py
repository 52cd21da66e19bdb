"""Tencent Cloud SMS (2021-01-11) through its official SDK; see `bot.sms` for the contract.

`went` reads the delivery reports of one number (PullSmsSendStatusByPhoneNumber): a report
comes once the carrier answered, and names our SessionContext only where SMS Helper turned
that on for the account; a report without one, for this number since the doubtful send,
is taken for it (so another SMS to the same number in those minutes would keep this one
from being sent again: at most one SMS, never two).
"""

from __future__ import annotations

import asyncio
import datetime as dt

from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as tencent_models
from tencentcloud.sms.v20210111.sms_client import SmsClient

from bot.config import Tencent
from bot.sms import SMS_TEMPLATES, Sender, SmsMessage, vendor_template
from bot.sms.errors import SmsError, failure, network_failure

MOST_REPORTS = 100  # PullSmsSendStatusByPhoneNumber's largest Limit
REPORTS_REACH = dt.timedelta(days=7) - dt.timedelta(minutes=1)  # how far back it reaches
CLOCK_MARGIN = dt.timedelta(seconds=10)  # our clock and Tencent's (TC3 allows 5 minutes)


class TencentSender(Sender):
    """Tencent Cloud SMS SendSms (2021-01-11) through the official SDK (TC3-HMAC-SHA256)."""

    name = "tencent"
    checks = True

    def __init__(self, cfg: Tencent, timeout: float):
        self.cfg = cfg
        # One timeout for connect and read alike; the SDK default is 60 s.
        http = HttpProfile(endpoint=cfg.endpoint, protocol=cfg.protocol, reqTimeout=timeout)
        self._client = SmsClient(
            Credential(cfg.secret_id, cfg.secret_key),
            cfg.region,
            ClientProfile(httpProfile=http),
        )

    async def _deliver(self, msg: SmsMessage) -> str:
        return await asyncio.to_thread(self._send_blocking, msg)

    def _send_blocking(self, msg: SmsMessage) -> str:
        request = tencent_models.SendSmsRequest()
        request.SmsSdkAppId = self.cfg.sdk_app_id
        request.SignName = self.cfg.sign_name
        request.TemplateId = vendor_template(msg, self.cfg.template_id, self.cfg.templates)
        request.TemplateParamSet = tencent_params(msg)
        request.PhoneNumberSet = [msg.phone]
        request.SessionContext = msg.key
        try:
            response = self._client.SendSms(request)
        except TencentCloudSDKException as exc:
            raise _tencent_error(exc, msg.phone) from None
        if not response.SendStatusSet:
            raise failure(
                "BadResponse", f"no SendStatusSet (request {response.RequestId})", msg.phone
            )
        status = response.SendStatusSet[0]
        if status.Code != "Ok":  # per-number failures only show here, not as Error
            raise failure(status.Code or "BadResponse", status.Message or "", msg.phone)
        return status.SerialNo or response.RequestId

    async def _find(self, phone: str, key: str, since: dt.datetime, now: dt.datetime) -> bool:
        return await asyncio.to_thread(self._find_blocking, phone, key, since, now)

    def _find_blocking(self, phone: str, key: str, since: dt.datetime, now: dt.datetime) -> bool:
        request = tencent_models.PullSmsSendStatusByPhoneNumberRequest()
        request.BeginTime = _unix(max(since - CLOCK_MARGIN, now - REPORTS_REACH))
        request.EndTime = _unix(now + CLOCK_MARGIN)
        request.Offset, request.Limit = 0, MOST_REPORTS
        request.PhoneNumber = phone
        request.SmsSdkAppId = self.cfg.sdk_app_id
        try:
            response = self._client.PullSmsSendStatusByPhoneNumber(request)
        except TencentCloudSDKException as exc:
            raise _tencent_error(exc, phone) from None
        return any(r.SessionContext in (key, "", None) for r in response.PullSmsSendStatusSet or [])


def _tencent_error(exc: TencentCloudSDKException, phone: str) -> SmsError:
    code, message = exc.code or "BadResponse", exc.message or ""
    if code == "ClientNetworkError":  # refused, reset, timed out
        return network_failure(message, phone, code)
    # Not Tencent's JSON answer (a proxy in between, most likely): it may have gone.
    return failure(code, message, phone, in_doubt=code in ("ServerNetworkError", "JSONDecodeError"))


def _unix(at: dt.datetime) -> int:
    return int(at.replace(tzinfo=dt.UTC).timestamp())


def tencent_params(msg: SmsMessage) -> list[str]:
    """The template variables as Tencent's ordered list (see SMS_TEMPLATES): every one the
    kind names, or none at all. A missing one would shift the rest into the wrong {n}
    ({order_no, time} would fill {2}, the gift, with the time), so it fails for good."""
    order = SMS_TEMPLATES.get(msg.template, ())
    unknown = sorted(set(msg.params) - set(order))
    if unknown:
        raise SmsError("UnknownParams", f"no Tencent position for {unknown}", retryable=False)
    missing = [k for k in order if k not in msg.params]
    if missing:
        raise SmsError(
            "MissingParams",
            f"{msg.template} fills {{1}}…{{{len(order)}}} with {', '.join(order)}; "
            f"{', '.join(missing)} missing",
            retryable=False,
        )
    return [str(msg.params[k]) for k in order]
