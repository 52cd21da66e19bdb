"""Why an SMS did not go, whether it may later, and whether it may have gone after all.

Usage::

    raise failure("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10", phone)  # final
    raise network_failure(str(exc), phone)   # in doubt, unless the vendor was never reached
    except SmsError as exc: exc.code, exc.retryable, exc.in_doubt

`retryable`: the same message may succeed later. `in_doubt`: the vendor may have taken
it although no answer said so (a timeout, a connection lost mid-request, an answer we
cannot read); the outbox then asks the vendor before sending it again (bot/outgoing/outbox.py).
Every message is scrubbed of the phone (vendor messages echo URLs and bodies).
"""

from __future__ import annotations

import re

from bot.forms.person import mask_phone

# Codes worth another try later: throttling and the vendor's own faults.
# Everything else a vendor answers (bad number, sign, template, params, auth,
# blacklist, balance) fails the same way however often we ask.
_RETRYABLE_CODES = {
    "isv.BUSINESS_LIMIT_CONTROL",
    "isp.SYSTEM_ERROR",
    "Throttling",
    "ServiceUnavailable",
    "InternalError",
    "RequestLimitExceeded",
    "NetworkError",
    "BadResponse",
    "ClientNetworkError",  # Tencent SDK: refused, reset, timed out
    "ServerNetworkError",  # Tencent SDK: an HTTP status other than 200
    "JSONDecodeError",  # Tencent SDK: an answer that is not JSON
}
_RETRYABLE_PREFIXES = ("LimitExceeded.", "InternalError.", "Throttling.")
# Limits that will not clear within the outbox's hour or so of retries, and a call the vendor
# will never know: final at once, the vendor's code and message saying why. A day-level limit
# (the number's day, the same text's day, the account's day) counts from the first SMS of a
# rolling 24 hours; minute- and hour-level ones (PhoneNumberThirtySecondLimit,
# PhoneNumberOneHourLimit, DeliveryFrequencyLimit) stay retried.
_FINAL_CODES = {
    "LimitExceeded.PhoneNumberDailyLimit",
    "LimitExceeded.PhoneNumberSameContentDailyLimit",
    "LimitExceeded.AppDailyLimit",
    "LimitExceeded.AppMainlandChinaDailyLimit",
    "LimitExceeded.AppGlobalDailyLimit",
    "LimitExceeded.AppCountryOrRegionDailyLimit",
    "LimitExceeded.DailyLimit",
    "LimitExceeded.AppCountryOrRegionInBlacklist",  # a console setting, not a count
    "LimitExceeded.PhoneNumberCountLimit",
    "InternalError.RestApiInterfaceNotExist",
}
# Aliyun answers every level of its flow control with one code and names the level in the
# message: 触发分钟级流控Permits:1, 触发小时级流控Permits:5, 触发天级流控Permits:10.
_ALIYUN_LIMIT = "isv.BUSINESS_LIMIT_CONTROL"
_DAY_LEVEL = re.compile(r"天级|\bday\b|\bdaily\b", re.IGNORECASE)
# Tencent's own timeouts towards the carriers: the SMS may have left all the same.
_VENDOR_TIMEOUTS = {"InternalError.Timeout", "InternalError.SendAndRecvFail"}
# What `requests` (under both SDKs) says when no byte of the request left: refused, no such
# host, no connection within the connect timeout, a TLS handshake that failed.
_NEVER_REACHED = re.compile(
    r"NewConnectionError|NameResolutionError|ConnectTimeoutError|SSLError|"
    r"Failed to establish a new connection|Connection refused"
)


class SmsError(Exception):
    """A send failed; `retryable` says whether the same message may succeed later,
    `in_doubt` whether the vendor may have taken it all the same."""

    def __init__(self, code: str, message: str, *, retryable: bool, in_doubt: bool = False):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.retryable = retryable
        self.in_doubt = in_doubt


def is_retryable_code(code: str, message: str = "") -> bool:
    """Whether a vendor's answer may differ later: throttling and the vendor's own faults,
    except the limits that outlast our retries (the message names Aliyun's level)."""
    if code in _FINAL_CODES or (code == _ALIYUN_LIMIT and _DAY_LEVEL.search(message)):
        return False
    return code in _RETRYABLE_CODES or code.startswith(_RETRYABLE_PREFIXES)


def failure(
    code: str, message: str, phone: str, retryable: bool | None = None, in_doubt: bool = False
) -> SmsError:
    """An SmsError for what the vendor answered (or `code` names), its text without the phone."""
    if retryable is None:
        retryable = is_retryable_code(code, str(message))
    in_doubt = in_doubt or code in _VENDOR_TIMEOUTS
    return SmsError(code, _scrub(str(message), phone), retryable=retryable, in_doubt=in_doubt)


def network_failure(
    detail: str, phone: str, code: str = "NetworkError", reached: bool | None = None
) -> SmsError:
    """No answer: retryable, and in doubt unless the request never left (refused, no host).
    `reached`: whether it may have arrived, when the caller knows; else read from `detail`."""
    if reached is None:
        reached = not _NEVER_REACHED.search(detail)
    return failure(code, detail, phone, retryable=True, in_doubt=reached)


def _scrub(text: str, phone: str) -> str:
    # The number shows up as +86…, 86…, %2B86… or the bare 11 digits; all end alike.
    tail = re.sub(r"\D", "", phone)[-8:]
    if not tail:
        return text
    return re.sub(r"\+?\d*" + tail, mask_phone(phone), text)
