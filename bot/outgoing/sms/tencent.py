"""Tencent Cloud SMS (2021-01-11) through its official SDK; see `bot.outgoing.sms` for the contract.

`went` reads the delivery reports of one number (PullSmsSendStatusByPhoneNumber): a report
comes once the carrier answered, and names our SessionContext only where SMS Helper turned
that on for the account; a report without one, for this number since the doubtful send,
is taken for it (so another SMS to the same number in those minutes would keep this one
from being sent again: at most one SMS, never two).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re

from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as tencent_models
from tencentcloud.sms.v20210111.sms_client import SmsClient

from bot.config import Tencent
from bot.outgoing.sms.base import SMS_TEMPLATES, Sender, SmsMessage, vendor_template
from bot.outgoing.sms.errors import SmsError, failure, network_failure

log = logging.getLogger("gift_bot.sms")

MOST_REPORTS = 100  # PullSmsSendStatusByPhoneNumber's largest Limit
REPORTS_REACH = dt.timedelta(days=7) - dt.timedelta(minutes=1)  # how far back it reaches
CLOCK_MARGIN = dt.timedelta(seconds=10)  # our clock and Tencent's (TC3 allows 5 minutes)


class TencentSender(Sender):
    """Tencent Cloud SMS SendSms (2021-01-11) through the official SDK (TC3-HMAC-SHA256)."""

    name = "tencent"
    checks = True

    def __init__(self, cfg: Tencent, timeout: float):
        self.cfg = cfg
        self.refused: dict[str, str] = {}  # our template name -> why its SMS are not sent
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
        if msg.template in self.refused:
            raise SmsError("TemplateMismatch", self.refused[msg.template], retryable=False)
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

    def check_templates(self) -> None:
        """At start-up: each configured template, as Tencent approved it, must have as many
        {n} as its kind fills (SMS_TEMPLATES). A kind whose template does not is logged with
        its config key and refused at send time, rather than sent for Tencent to refuse or
        (with fewer {n}) to show a variable in another's place. When Tencent cannot be
        asked (no network, an account that may not read templates), it sends as configured."""
        for name, key, template_id in self._configured():
            try:
                content = self._template(template_id)
            except TencentCloudSDKException as exc:
                if exc.code != "FailedOperation.TemplateIdNotExist":
                    log.warning("sms tencent: templates not checked: %s: %s", exc.code, exc.message)
                    return
                content = None
            fills = SMS_TEMPLATES[name]
            if content is None:
                why = f"{key}: template {template_id} is not in this Tencent account"
            elif (has := len(set(re.findall(r"\{(\d+)\}", content)))) != len(fills):
                why = (
                    f"{key}: template {template_id} has {has} variables; "
                    f"{name} fills {len(fills)}: {', '.join(fills)}"
                )
            else:
                continue
            self.refused[name] = why
            log.error("sms tencent: %s; its SMS fail until the template or the key is fixed", why)

    def _configured(self) -> list[tuple[str, str, str]]:
        """(our template name, its config key, Tencent's template id) for each template."""
        first = [("order_placed", "sms.tencent.template_id", self.cfg.template_id)]
        more = [(n, f"sms.tencent.templates.{n}", t) for n, t in self.cfg.templates.items()]
        return first + more

    def _template(self, template_id: str) -> str | None:
        """The template's text as Tencent approved it; None when the account has none so."""
        request = tencent_models.DescribeSmsTemplateListRequest()
        request.International = 0  # mainland numbers only (bot/forms/person.py)
        request.TemplateIdSet = [int(template_id)]
        found = self._client.DescribeSmsTemplateList(request).DescribeTemplateStatusSet or []
        return found[0].TemplateContent or "" if found else None

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
