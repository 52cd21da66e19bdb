"""WeChat Pay API v3 on the wire: the Authorization header, the strings each side signs, the
signed answer headers and the encrypted resource of a notification.

Usage::

    auth = parse_authorization(headers.get("Authorization"))      # or raises Refusal (401)
    message = request_message("POST", "/v3/pay/transactions/jsapi", auth.timestamp, auth.nonce, raw)
    verify(merchant_public_key, message, auth.signature)           # True / False
    headers = answer_headers(platform_key, "PUB_KEY_ID_01...", raw_answer, now)   # or a serial
    resource = encrypt_resource(api_v3_key, "transaction", {"out_trade_no": ...})
    sealed = seal(api_v3_key, pem_bytes, "certificate")   # a listed certificate's encryption

Sources (pay.weixin.qq.com/doc/v3/merchant/...): 4012365342 签名认证 (the request's
five lines `METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`, RSA-SHA256 PKCS#1 v1.5, base64;
the answer's `TIMESTAMP\\nNONCE\\nBODY\\n`); 4012072670 (why a request gets 401: each
message below is quoted from it); 4012081709 基本规则 (Request-ID, UTF-8 of one to three
bytes); the 回调报文解密 guide (AEAD_AES_256_GCM, key = the 32-byte APIv3 key, a
12-character nonce, associated_data). Checked against minibear2021/wechatpayv3
(utils.py, core.py) and wechatpay-apiv3/wechatpay-go (core/consts, core/auth/validators).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME = "WECHATPAY2-SHA256-RSA2048"
SIGNTEST = "WECHATPAY/SIGNTEST/"  # WeChat Pay's deliberate bad signatures start so
BEIJING = dt.timezone(dt.timedelta(hours=8))
AUTH_PARAMS = frozenset({"mchid", "nonce_str", "signature", "timestamp", "serial_no"})
_PARAM = re.compile(r'([a-z_]+)="([^"]*)"')
_ALPHANUM = string.ascii_letters + string.digits
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")

BAD_FORMAT = "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》"
BAD_SCHEME = "Http头Authorization认证类型不正确"
STALE = "Http头Authorization中的timestamp与发起请求的时间不得超过5分钟"
BAD_SERIAL = "商户证书序列号有误。请使用签名私钥匹配的证书序列号"
BAD_SIGNATURE = "错误的签名，验签失败"


class Refusal(Exception):
    """What WeChat Pay answers instead of a result: an HTTP status and `{"code", "message"}`."""

    def __init__(self, status: int, code: str, message: str, detail: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.detail = status, code, message, detail

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


def sign_error(message: str, detail: dict | None = None) -> Refusal:
    return Refusal(401, "SIGN_ERROR", message, detail)


@dataclass(frozen=True)
class Authorization:
    mchid: str
    nonce: str
    signature: str
    timestamp: str  # as sent: the signed string uses these exact characters
    serial_no: str


def parse_authorization(value: str | None) -> Authorization:
    """`WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",...`: the scheme, one space, then
    exactly the five quoted parameters, comma-separated, in any order (the SDKs differ)."""
    scheme, space, params = (value or "").partition(" ")
    if scheme != SCHEME:
        known_family = scheme.startswith("WECHATPAY2-") and space
        raise sign_error(BAD_SCHEME if known_family else BAD_FORMAT)
    found: dict[str, str] = {}
    for pair in params.split(","):
        match = _PARAM.fullmatch(pair)
        if not match or match[1] not in AUTH_PARAMS or match[1] in found or not match[2]:
            raise sign_error(BAD_FORMAT)
        found[match[1]] = match[2]
    if set(found) != AUTH_PARAMS or not (
        found["timestamp"].isascii() and found["timestamp"].isdigit()
    ):
        raise sign_error(BAD_FORMAT)
    return Authorization(
        found["mchid"],
        found["nonce_str"],
        found["signature"],
        found["timestamp"],
        found["serial_no"],
    )


def request_message(method: str, uri: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The request's string to sign: the URL is path and query without the host; GET's body is ""."""
    head = f"{method}\n{uri}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


def answer_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What WeChat Pay signs on an answer or a notification: timestamp, nonce, the raw body."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(public_key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def answer_headers(
    private_key: rsa.RSAPrivateKey,
    serial: str,
    body: bytes,
    now: float,
    *,
    probe: bool = False,
    signature_type: str = SCHEME,
) -> dict[str, str]:
    """The headers that make an answer or a notification checkable, signed by the key that
    `serial` names (a PUB_KEY_ID_… or a platform certificate's serial). `probe` writes a
    `WECHATPAY/SIGNTEST/` signature that must fail, as WeChat Pay now and then does."""
    timestamp, nonce = str(int(now)), secrets.token_hex(16)
    signature = sign(private_key, answer_message(timestamp, nonce, body))
    if probe:
        signature = SIGNTEST + base64.b64encode(secrets.token_bytes(256)).decode()
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": signature_type,
        "Request-ID": request_id(),
    }


def seal(api_v3_key: str, raw: bytes, associated: str) -> dict[str, str]:
    """AEAD_AES_256_GCM under the APIv3 key: a 12-character nonce, the tag appended, base64."""
    nonce = "".join(secrets.choice(_ALPHANUM) for _ in range(12))
    sealed = AESGCM(api_v3_key.encode()).encrypt(nonce.encode(), raw, associated.encode())
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "nonce": nonce,
        "associated_data": associated,
        "ciphertext": base64.b64encode(sealed).decode(),
    }


def encrypt_resource(api_v3_key: str, original_type: str, plaintext: dict) -> dict[str, str]:
    """A notification's `resource`: sealed, its associated data "transaction" / "refund" as
    real notifications carry them."""
    sealed = seal(api_v3_key, dump(plaintext), original_type)
    return {
        "original_type": original_type,
        "algorithm": sealed["algorithm"],
        "ciphertext": sealed["ciphertext"],
        "associated_data": sealed["associated_data"],
        "nonce": sealed["nonce"],
    }


def dump(obj: Any) -> bytes:
    """JSON as WeChat Pay writes it: compact, UTF-8 (not \\u escapes)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def rfc3339(unix: float) -> str:
    """`2018-06-08T10:34:56+08:00`: WeChat Pay's times are Beijing time with the offset."""
    return dt.datetime.fromtimestamp(int(unix), BEIJING).isoformat()


def parse_rfc3339(text: str) -> float | None:
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def digits(count: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(count))


def request_id() -> str:
    return secrets.token_hex(20).upper() + "-0"


def load_public_key(key: bytes | str | rsa.RSAPublicKey) -> rsa.RSAPublicKey:
    if isinstance(key, rsa.RSAPublicKey):
        return key
    loaded = serialization.load_pem_public_key(key.encode() if isinstance(key, str) else key)
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise ValueError("WeChat Pay keys are RSA keys")
    return loaded


def load_private_key(key: bytes | str | rsa.RSAPrivateKey) -> rsa.RSAPrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    loaded = serialization.load_pem_private_key(
        key.encode() if isinstance(key, str) else key, password=None
    )
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError("WeChat Pay keys are RSA keys")
    return loaded


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> bytes:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
