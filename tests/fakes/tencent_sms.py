"""A fake of Tencent Cloud SMS (2021-01-11): SendSms, PullSmsSendStatusByPhoneNumber and
DescribeSmsTemplateList, as documented.

Usage::

    with FakeTencent(secret_id="SID", secret_key="SKEY", clock=bot.clock) as tencent:
        Tencent(..., endpoint=tencent.endpoint, protocol="http")   # point the SDK here
        tencent.templates["123456"] = "您的订单{1}（{2}）将于{3}送达"   # approved templates
        tencent.received[0]["PhoneNumberSet"]   # every signed SendSms body
        tencent.sent                            # the SMS it took (see FakeVendor)
        tencent.status_code = "LimitExceeded.PhoneNumberDailyLimit"   # per-number outcome
        tencent.error_code = "InternalError"                          # whole-request error
        tencent.session_context_in_status = True   # SMS Helper turned it on for the account
        tencent.stall = "after"                 # the next SendSms is taken, its answer lost

Every request must be signed (TC3-HMAC-SHA256, `sms_signing`), for the account's
SmsSdkAppId; errors come back as HTTP 200 with `Response.Error`. SendSms needs an
approved template and exactly as many TemplateParamSet entries as it has {n}
(FailedOperation.TemplateParamSetNotMatchApprovedTemplate). A status record shows once
the carrier reported (`lag_seconds` after the send); its SessionContext is empty unless
SMS Helper turned it on. PullSmsSendStatusByPhoneNumber wants Offset 0, Limit 1-100,
BeginTime within 7 days, EndTime not before it, and filters on the report time.
Sources: cloud.tencent.com/document/api/382/55981 (SendSms),
tencentcloud.com/document/api/382/40518 (PullSmsSendStatusByPhoneNumber), the SDK's
sms/v20210111/models.py (DescribeSmsTemplateList, PullSmsSendStatus) and errorcodes.py.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

from tornado.web import RequestHandler

from fakes.sms_signing import check_tc3
from fakes.sms_vendors import FakeVendor, VendorHandler, utc_now

DEFAULT_TEMPLATE = "您的订单{1}（{2}）将于{3}送达。"


class FakeTencent(FakeVendor):
    def __init__(
        self, secret_id: str, secret_key: str, sdk_app_id: str = "1400000000", clock=utc_now
    ) -> None:
        super().__init__(clock)
        self.secret_id, self.secret_key, self.sdk_app_id = secret_id, secret_key, sdk_app_id
        self.status_code = "Ok"  # per-number outcome in SendStatusSet
        self.error_code = ""  # e.g. "InternalError": a whole-request Response.Error
        self.session_context_in_status = False
        # Approved templates by id: the ones the tests' configs name, unless a test says.
        self.templates = {"200": DEFAULT_TEMPLATE, "123456": DEFAULT_TEMPLATE}

    def handler(self) -> type[RequestHandler]:
        return _TencentHandler


class _TencentHandler(VendorHandler):
    fake: FakeTencent

    async def post(self) -> None:
        fake = self.fake
        self.request_id = str(uuid.uuid4())
        error = check_tc3(self.request, fake.secret_id, fake.secret_key)
        if self.request.headers.get("X-TC-Version") != "2021-01-11":
            error = error or "NoSuchVersion"
        params = {} if error else json.loads(self.request.body)
        if "SmsSdkAppId" in params and params["SmsSdkAppId"] != fake.sdk_app_id:
            error = "UnauthorizedOperation.SmsSdkAppIdVerifyFail"
        if error:
            return self._error(error)
        action = self.request.headers.get("X-TC-Action")
        if action == "SendSms":
            return await self._send(params)
        if action == "PullSmsSendStatusByPhoneNumber":
            return self._pull(params)
        if action == "DescribeSmsTemplateList":
            return self._templates(params)
        return self._error("InvalidAction")

    # -- SendSms ------------------------------------------------------------------------

    async def _send(self, params: dict) -> None:
        fake = self.fake
        stall = fake.take_stall()
        if stall == "before":
            return await self.hold()
        fake.received.append(params)
        error = fake.error_code or self._refusal(params)
        if error:
            return self._error(error)
        statuses = [self._status(phone, params) for phone in params.get("PhoneNumberSet", [])]
        if stall == "after":
            return await self.hold()
        self._answer({"SendStatusSet": statuses})

    def _refusal(self, params: dict) -> str | None:
        if not params.get("PhoneNumberSet"):
            return "MissingParameter.EmptyPhoneNumberSet"
        template = self.fake.templates.get(params.get("TemplateId", ""))
        if template is None:
            return "FailedOperation.TemplateIncorrectOrUnapproved"
        if len(params.get("TemplateParamSet") or []) != len(_variables(template)):
            return "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"
        return None

    def _status(self, phone: str, params: dict) -> dict:
        fake, code = self.fake, self.fake.status_code
        serial = ""
        if code == "Ok":
            serial = f"2028:{len(fake.sent) + 1}"
            sms = {"phone": _e164(phone), "key": params.get("SessionContext", "")}
            sms["at"] = fake.clock()
            fake.sent.append(sms | {"serial": serial})
        return {
            "SerialNo": serial,
            "PhoneNumber": phone,
            "Fee": 1 if code == "Ok" else 0,
            "SessionContext": params.get("SessionContext", ""),
            "Code": code,
            "Message": "send success" if code == "Ok" else code,
            "IsoCode": "CN",
        }

    # -- PullSmsSendStatusByPhoneNumber -------------------------------------------------

    def _pull(self, params: dict) -> None:
        fake = self.fake
        fake.queries.append(params)
        now = _unix(fake.clock())
        begin, end = params.get("BeginTime"), params.get("EndTime", now)
        if not params.get("PhoneNumber") or not params.get("SmsSdkAppId") or begin is None:
            return self._error("MissingParameter")
        if params.get("Offset") != 0:
            return self._error("InvalidParameterValue.OffsetVerifyFail")
        if not 1 <= params.get("Limit", 0) <= 100:
            return self._error("InvalidParameterValue.LimitVerifyFail")
        if begin < now - 7 * 86400:
            return self._error("InvalidParameterValue.BeginTimeVerifyFail")
        if end < begin:
            return self._error("InvalidParameterValue.EndTimeVerifyFail")
        lag = fake.lag_seconds
        shown = [
            sms
            for sms in fake.visible()
            if sms["phone"] == params["PhoneNumber"] and begin <= _unix(sms["at"]) + lag <= end
        ]
        reports = [self._report(sms) for sms in shown[: params["Limit"]]]
        self._answer({"PullSmsSendStatusSet": reports})

    def _report(self, sms: dict) -> dict:
        return {
            "UserReceiveTime": int(_unix(sms["at"]) + self.fake.lag_seconds),
            "CountryCode": "86",
            "SubscriberNumber": sms["phone"].removeprefix("+86"),
            "PhoneNumber": sms["phone"],
            "SerialNo": sms["serial"],
            "ReportStatus": "SUCCESS",
            "Description": "DELIVRD",
            "SessionContext": sms["key"] if self.fake.session_context_in_status else "",
        }

    # -- DescribeSmsTemplateList --------------------------------------------------------

    def _templates(self, params: dict) -> None:
        if params.get("International") not in (0, 1):
            return self._error("MissingParameter")
        ids = [str(i) for i in params.get("TemplateIdSet") or []]
        if not ids or any(i not in self.fake.templates for i in ids):
            return self._error("FailedOperation.TemplateIdNotExist")
        self._answer({"DescribeTemplateStatusSet": [self._template(i) for i in ids]})

    def _template(self, template_id: str) -> dict:
        return {
            "TemplateId": int(template_id),
            "International": 0,
            "StatusCode": 0,  # approved and in force
            "ReviewReply": "",
            "TemplateName": f"template {template_id}",
            "CreateTime": 1700000000,
            "TemplateContent": self.fake.templates[template_id],
        }

    # -- answers --------------------------------------------------------------------------

    def _answer(self, body: dict) -> None:
        self.reply(200, {"Response": body | {"RequestId": self.request_id}})

    def _error(self, code: str) -> None:
        self._answer({"Error": {"Code": code, "Message": code}})


def _e164(phone: str) -> str:
    """A mainland number as SendSms takes it (+86…, 0086…, 86… or the bare 11 digits)."""
    mainland = re.fullmatch(r"(?:\+86|0086|86)?(1\d{10})", phone)
    return f"+86{mainland[1]}" if mainland else phone


def _variables(template: str) -> set[str]:
    return set(re.findall(r"\{(\d+)\}", template))


def _unix(at: dt.datetime) -> float:
    return at.replace(tzinfo=dt.UTC).timestamp()
