"""Check request signatures the way Aliyun (ACS3) and Tencent Cloud (TC3) do.

Usage::

    error = check_acs3(request, access_key_id="AK", secret="SK")   # None, or (status, code)
    error = check_tc3(request, secret_id="SID", secret_key="SKEY")  # None, or an error code

`request` is a Tornado `HTTPServerRequest`. Written from the vendors' protocol
descriptions (shared/WECHAT.md §10, §11), never with the SDKs' own signing
code, so a test passes only if the SDK really signs as the vendor expects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from urllib.parse import quote

from tornado.httputil import HTTPServerRequest

ACS3 = "ACS3-HMAC-SHA256"
TC3 = "TC3-HMAC-SHA256"
ACS3_MAX_SKEW = 15 * 60  # seconds; Aliyun refuses older requests as replays
TC3_MAX_SKEW = 5 * 60


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _rfc3986(text: str) -> str:
    # Unreserved characters stay, everything else is %XX of its UTF-8 bytes:
    # space is %20 (not +), "*" is %2A, "~" stays.
    return quote(text, safe="-_.~")


def _auth_fields(value: str) -> dict[str, str]:
    """`Credential=a,SignedHeaders=b,Signature=c` (TC3 puts a space after commas)."""
    fields = {}
    for part in value.split(","):
        name, sep, field_value = part.strip().partition("=")
        if sep:
            fields[name] = field_value
    return fields


# -- Aliyun ACS3-HMAC-SHA256 -------------------------------------------------


def acs3_canonical_request(request: HTTPServerRequest, signed: list[str], payload_hash: str) -> str:
    query = sorted(
        (_rfc3986(name), _rfc3986(value.decode("utf-8")))
        for name, values in request.query_arguments.items()
        for value in values
    )
    headers = "".join(f"{name}:{request.headers.get(name, '').strip()}\n" for name in signed)
    return "\n".join(
        [
            request.method,
            request.path or "/",
            "&".join(f"{k}={v}" for k, v in query),
            headers,
            ";".join(signed),
            payload_hash,
        ]
    )


def acs3_signature(canonical_request: str, secret: str) -> str:
    string_to_sign = f"{ACS3}\n{_sha256_hex(canonical_request.encode('utf-8'))}"
    return _hmac(secret.encode("utf-8"), string_to_sign).hex()


def check_acs3(
    request: HTTPServerRequest, access_key_id: str, secret: str
) -> tuple[int, str] | None:
    """None if the request is signed with this key pair, else (HTTP status, Aliyun code)."""
    algorithm, _, rest = request.headers.get("Authorization", "").partition(" ")
    fields = _auth_fields(rest)
    if algorithm != ACS3 or not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
        return 400, "IncompleteSignature"
    if fields["Credential"] != access_key_id:
        return 404, "InvalidAccessKeyId.NotFound"
    signed = fields["SignedHeaders"].split(";")
    must_sign = {"host"} | {n.lower() for n in request.headers if n.lower().startswith("x-acs-")}
    if "Content-Type" in request.headers:
        must_sign.add("content-type")
    payload_hash = _sha256_hex(request.body)
    if signed != sorted(signed) or not must_sign <= set(signed):
        return 400, "IncompleteSignature"
    if request.headers.get("x-acs-content-sha256") != payload_hash:
        return 400, "IncompleteSignature"
    if not _fresh(request.headers.get("x-acs-date", ""), "%Y-%m-%dT%H:%M:%SZ", ACS3_MAX_SKEW):
        return 400, "InvalidTimeStamp.Expired"
    expected = acs3_signature(acs3_canonical_request(request, signed, payload_hash), secret)
    if not hmac.compare_digest(expected, fields["Signature"]):
        return 400, "SignatureDoesNotMatch"
    return None


def _fresh(stamp: str, fmt: str, max_skew: float) -> bool:
    try:
        when = dt.datetime.strptime(stamp, fmt).replace(tzinfo=dt.UTC)
    except ValueError:
        return False
    return abs(time.time() - when.timestamp()) <= max_skew


# -- Tencent Cloud TC3-HMAC-SHA256 -------------------------------------------


def tc3_canonical_request(request: HTTPServerRequest, signed: list[str]) -> str:
    # Names *and values* lower-cased and trimmed, as the TC3 description says.
    headers = "".join(f"{n}:{request.headers.get(n, '').strip().lower()}\n" for n in signed)
    query = request.query if request.method == "GET" else ""
    payload = b"" if request.method == "GET" else request.body
    return "\n".join(
        [
            request.method,
            request.path or "/",
            query,
            headers,
            ";".join(signed),
            _sha256_hex(payload),
        ]
    )


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    key = _hmac(f"TC3{secret_key}".encode(), date)
    key = _hmac(key, service)
    key = _hmac(key, "tc3_request")
    return _hmac(key, string_to_sign).hex()


def check_tc3(
    request: HTTPServerRequest, secret_id: str, secret_key: str, service: str = "sms"
) -> str | None:
    """None if the request is signed with this key pair, else a Tencent error code."""
    algorithm, _, rest = request.headers.get("Authorization", "").partition(" ")
    fields = _auth_fields(rest)
    scope = fields.get("Credential", "").split("/")
    signed = fields.get("SignedHeaders", "").split(";")
    if algorithm != TC3 or len(scope) != 4 or "Signature" not in fields:
        return "AuthFailure.InvalidAuthorization"
    if not {"content-type", "host"} <= set(signed) or scope[2:] != [service, "tc3_request"]:
        return "AuthFailure.InvalidAuthorization"
    if scope[0] != secret_id:
        return "AuthFailure.SecretIdNotFound"
    stamp = request.headers.get("X-TC-Timestamp", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > TC3_MAX_SKEW:
        return "AuthFailure.SignatureExpire"
    date = dt.datetime.fromtimestamp(int(stamp), dt.UTC).strftime("%Y-%m-%d")
    if scope[1] != date:  # the scope's date must be the timestamp's UTC day
        return "AuthFailure.SignatureFailure"
    canonical = tc3_canonical_request(request, signed)
    string_to_sign = "\n".join(
        [TC3, stamp, f"{date}/{service}/tc3_request", _sha256_hex(canonical.encode("utf-8"))]
    )
    expected = tc3_signature(secret_key, date, service, string_to_sign)
    if not hmac.compare_digest(expected, fields["Signature"]):
        return "AuthFailure.SignatureFailure"
    return None
