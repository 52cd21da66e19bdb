"""A fake of Aliyun SMS (dysmsapi 2017-05-25): SendSms and QuerySendDetails, as documented.

Usage::

    with FakeAliyun(access_key_id="AK", secret="SK", clock=bot.clock) as aliyun:
        Aliyun(..., endpoint=aliyun.endpoint, protocol="http")   # point the SDK here
        aliyun.received[0]["PhoneNumbers"]      # every signed SendSms, as asked
        aliyun.sent                             # the SMS it took (see FakeVendor)
        aliyun.answer_code, aliyun.answer_message = "isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10"
        aliyun.lag_seconds = 60                 # QuerySendDetails shows an SMS a minute late
        aliyun.stall = "after"                  # the next SendSms is taken, its answer lost

Every request must be signed (ACS3-HMAC-SHA256, `sms_signing`). SendSms takes a
mainland number as 11 digits with or without 86 / +86 / 0086 and keeps it as the 11
digits; `TemplateParam` must be a JSON object of strings (isv.INVALID_JSON_PARAM);
with `templates` set, the template must be one of them and get all its ${variables}.
QuerySendDetails wants PhoneNumber (a mainland number as its 11 digits), SendDate
(yyyyMMdd, Beijing time, the last 30 days), PageSize (1-50) and CurrentPage, and
answers newest first. Sources: help.aliyun.com/document_detail/419273.html (SendSms),
419277.html (QuerySendDetails), 101346.html (codes).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

from tornado.web import RequestHandler

from fakes.sms_signing import check_acs3
from fakes.sms_vendors import FakeVendor, VendorHandler, utc_now

BEIJING = dt.timedelta(hours=8)  # SendDate and the records' times are China Standard Time


def beijing(at: dt.datetime, fmt: str) -> str:
    return (at + BEIJING).strftime(fmt)


class FakeAliyun(FakeVendor):
    def __init__(self, access_key_id: str, secret: str, clock=utc_now) -> None:
        super().__init__(clock)
        self.access_key_id, self.secret = access_key_id, secret
        self.answer_code = "OK"  # or a business error, answered with HTTP 200
        self.answer_message = ""  # its message (default: the code)
        self.fail_status = 0  # e.g. 503: answer that, with a JSON error body
        self.fail_html = False  # with fail_status: a proxy's HTML page instead
        self.templates: dict[str, str] | None = None  # TemplateCode -> text with ${name}

    def handler(self) -> type[RequestHandler]:
        return _AliyunHandler


class _AliyunHandler(VendorHandler):
    fake: FakeAliyun

    async def post(self) -> None:
        fake = self.fake
        self.request_id = str(uuid.uuid4()).upper()
        if fake.fail_status:
            return (
                self._html()
                if fake.fail_html
                else self._error(fake.fail_status, "ServiceUnavailable")
            )
        error = check_acs3(self.request, fake.access_key_id, fake.secret)
        if error:
            return self._error(*error)
        if self.request.headers.get("x-acs-version") != "2017-05-25":
            return self._error(400, "InvalidVersion")
        params = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        action = self.request.headers.get("x-acs-action")
        if action == "SendSms":
            return await self._send(params)
        if action == "QuerySendDetails":
            return self._query(params)
        return self._error(404, "InvalidAction.NotFound")

    # -- SendSms ------------------------------------------------------------------------

    async def _send(self, params: dict[str, str]) -> None:
        fake = self.fake
        stall = fake.take_stall()
        if stall == "before":
            return await self.hold()
        fake.received.append(params)
        code = self._refusal(params) or fake.answer_code
        body = self._body(code, fake.answer_message or code)
        if code == "OK":
            body["BizId"] = f"{len(fake.sent) + 1}^0"
            fake.sent.append(self._sms(params, body["BizId"]))
        if stall == "after":
            return await self.hold()
        self.reply(200, body)

    def _refusal(self, params: dict[str, str]) -> str | None:
        if not all(params.get(k) for k in ("PhoneNumbers", "SignName", "TemplateCode")):
            return "isv.INVALID_PARAMETERS"
        if not _phone(params["PhoneNumbers"]):
            return "isv.MOBILE_NUMBER_ILLEGAL"
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return "isv.INVALID_JSON_PARAM"
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return "isv.INVALID_JSON_PARAM"
        templates = self.fake.templates
        if templates is not None:
            text = templates.get(params["TemplateCode"])
            if text is None:
                return "isv.SMS_TEMPLATE_ILLEGAL"
            if set(re.findall(r"\$\{(\w+)\}", text)) - set(values):
                return "isv.TEMPLATE_MISSING_PARAMETERS"
        return None

    def _sms(self, params: dict[str, str], biz_id: str) -> dict:
        values = json.loads(params.get("TemplateParam") or "{}")
        text = (self.fake.templates or {}).get(
            params["TemplateCode"], json.dumps(values, ensure_ascii=False)
        )
        text = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m[1], ""), text)
        return {
            "phone": _phone(params["PhoneNumbers"]),
            "key": params.get("OutId", ""),
            "at": self.fake.clock(),
            "biz_id": biz_id,
            "template": params["TemplateCode"],
            "content": f"【{params['SignName']}】{text}",
        }

    # -- QuerySendDetails -----------------------------------------------------------------

    def _query(self, params: dict[str, str]) -> None:
        fake = self.fake
        for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
            if not params.get(name):
                return self._error(400, f"Missing{name}")
        fake.queries.append(params)
        size, page = _number(params["PageSize"]), _number(params["CurrentPage"])
        if not 1 <= size <= 50 or page < 1 or not self._recent(params["SendDate"]):
            return self.reply(200, self._body("isv.INVALID_PARAMETERS", "invalid parameters"))
        found = [
            sms
            for sms in reversed(fake.visible())
            if sms["phone"] == params["PhoneNumber"]
            and beijing(sms["at"], "%Y%m%d") == params["SendDate"]
            and params.get("BizId", sms["biz_id"]) == sms["biz_id"]
        ]
        shown = found[(page - 1) * size : page * size]
        body = self._body("OK", "OK")
        body["TotalCount"] = len(found)
        body["SmsSendDetailDTOs"] = {"SmsSendDetailDTO": [_detail(sms) for sms in shown]}
        self.reply(200, body)

    def _recent(self, send_date: str) -> bool:
        try:
            day = dt.datetime.strptime(send_date, "%Y%m%d").date()
        except ValueError:
            return False
        today = (self.fake.clock() + BEIJING).date()
        return today - dt.timedelta(days=30) <= day <= today

    # -- answers --------------------------------------------------------------------------

    def _body(self, code: str, message: str) -> dict:
        return {"Code": code, "Message": message, "RequestId": self.request_id}

    def _error(self, status: int, code: str) -> None:
        self.reply(status, self._body(code, code))

    def _html(self) -> None:
        self.set_status(self.fake.fail_status)
        self.set_header("Content-Type", "text/html")
        self.finish("<html><body>502 Bad Gateway</body></html>")


def _phone(numbers: str) -> str:
    """One number as Aliyun keeps it (a mainland one as its 11 digits); "" if not one."""
    digits = numbers.strip().removeprefix("+").removeprefix("00")
    if not digits.isdigit():  # a list, or not a number
        return ""
    mainland = re.fullmatch(r"(?:86)?(1\d{10})", digits)
    return mainland[1] if mainland else digits


def _number(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _detail(sms: dict) -> dict:
    at = beijing(sms["at"], "%Y-%m-%d %H:%M:%S")
    return {
        "PhoneNum": sms["phone"],
        "SendStatus": 3,  # 1 waiting for the receipt, 2 failed, 3 delivered
        "ErrCode": "DELIVERED",
        "TemplateCode": sms["template"],
        "Content": sms["content"],
        "SendDate": at,
        "ReceiveDate": at,
        "OutId": sms["key"],
    }
