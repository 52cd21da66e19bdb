"""WeChat's side of the wire, precomputed: signed text pushes and page visits as raw HTTP.

Written from the protocol (../shared/WECHAT.md §1–3), not from the bot's code::

    wire = Wire(token, app_id, host="127.0.0.1:8080", aes_key="" or 43 chars)
    raw = wire.text_push("o_user", "礼品", msg_id=7001)     # b"POST /wechat?signature=…"
    raw = wire.page_get("/claim/TOKEN", cookie)             # b"GET /claim/TOKEN …"

Each push gets a fresh nonce, the current timestamp and its own MsgId. In safe
mode the push is encrypted (AES-256-CBC, IV = key[:16], PKCS#7 to 32 bytes)
and signed with msg_signature as WeChat does.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import struct
import time
from urllib.parse import urlencode

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ACCOUNT = "gh_bench_account"  # the Official Account's id: ToUserName of every push


def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def aes_key_bytes(aes_key: str) -> bytes:
    return base64.b64decode(aes_key + "=")


class Wire:
    def __init__(self, token: str, app_id: str, host: str, aes_key: str = ""):
        self.token = token
        self.app_id = app_id.encode()
        self.host = host
        self.key = aes_key_bytes(aes_key) if aes_key else None
        self._nonces = itertools.count()
        self._run = os.urandom(4).hex()  # nonces never repeat across harness runs

    def nonce(self) -> str:
        return f"{self._run}{next(self._nonces):x}"

    def text_xml(self, openid: str, content: str, msg_id: int, created: int) -> str:
        return (
            f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName>"
            f"<FromUserName>{cdata(openid)}</FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType>{cdata('text')}</MsgType>"
            f"<Content>{cdata(content)}</Content><MsgId>{msg_id}</MsgId></xml>"
        )

    def encrypt(self, xml: str) -> str:
        body = xml.encode()
        plain = os.urandom(16) + struct.pack(">I", len(body)) + body + self.app_id
        pad = 32 - len(plain) % 32
        plain += bytes([pad]) * pad
        enc = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def text_push(self, openid: str, content: str, msg_id: int, now: int | None = None) -> bytes:
        """One signed push of a text message, as the raw HTTP request WeChat would send."""
        timestamp = str(now or int(time.time()))
        nonce = self.nonce()
        query = {
            "signature": sha1_signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": openid,
        }
        xml = self.text_xml(openid, content, msg_id, int(timestamp))
        if self.key:
            encrypted = self.encrypt(xml)
            query["encrypt_type"] = "aes"
            query["msg_signature"] = sha1_signature(self.token, timestamp, nonce, encrypted)
            xml = (
                f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName>"
                f"<Encrypt>{cdata(encrypted)}</Encrypt></xml>"
            )
        return self.post("/wechat?" + urlencode(query), xml.encode())

    def post(self, path: str, body: bytes) -> bytes:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            "User-Agent: Mozilla/4.0\r\nAccept: */*\r\n"
            "Content-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def get(self, path: str, cookie: str = "") -> bytes:
        head = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        head += (
            "User-Agent: Mozilla/5.0 (iPhone) MicroMessenger/8.0.50\r\n"
            "Accept: text/html\r\nAccept-Language: zh-CN\r\n"
        )
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        return (head + "\r\n").encode()
