"""Tencent Cloud SMS (2021-01-11) through its official SDK; see `bot.sms` for the contract."""

from __future__ import annotations

import asyncio

from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as tencent_models
from tencentcloud.sms.v20210111.sms_client import SmsClient

from bot.config import Tencent
from bot.sms import (
    READ_TIMEOUT,
    SMS_TEMPLATES,
    Sender,
    SmsError,
    SmsMessage,
    failure,
    vendor_template,
)


class TencentSender(Sender):
    """Tencent Cloud SMS SendSms (2021-01-11) through the official SDK (TC3-HMAC-SHA256)."""

    name = "tencent"

    def __init__(self, cfg: Tencent):
        self.cfg = cfg
        # One timeout for connect and read alike; the SDK default is 60 s.
        http = HttpProfile(endpoint=cfg.endpoint, protocol=cfg.protocol, reqTimeout=READ_TIMEOUT)
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
            raise failure(exc.code or "BadResponse", exc.message or "", msg.phone) from None
        if not response.SendStatusSet:
            raise failure(
                "BadResponse", f"no SendStatusSet (request {response.RequestId})", msg.phone
            )
        status = response.SendStatusSet[0]
        if status.Code != "Ok":  # per-number failures only show here, not as Error
            raise failure(status.Code or "BadResponse", status.Message or "", msg.phone)
        return status.SerialNo or response.RequestId


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
