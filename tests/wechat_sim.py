"""WeChat's side of the callback, written from the protocol (../shared/WECHAT.md §1–3),
independently of the bot's code: it signs, encrypts, posts and reads replies as WeChat does.

Usage::

    wx = WeChatSim(base_url, token="t", app_id="wx…", aes_key="…43 chars…" or "")
    reply = wx.text("o_user", "礼品")         # {"MsgType": "text", "Content": "…"} (decrypted)
    wx.click("o_user", "GIFTS"); wx.subscribe("o_user", scene="TOKEN")
    wx.transcript                              # [("o_user", "礼品"), ("bot", "…")]
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ACCOUNT = "gh_test_account"
_msg_ids = itertools.count(int(time.time() * 1000) % 10**12 * 1000)


def cdata(text: str) -> str:
    """A CDATA section holding any text: a `]]>` inside is split across two sections."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


class HttpError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


class WeChatSim:
    def __init__(self, base_url: str, token: str, app_id: str, aes_key: str = ""):
        self.url = base_url.rstrip("/") + "/wechat"
        self.token = token
        self.app_id = app_id
        self.key = base64.b64decode(aes_key + "=") if aes_key else None
        self.transcript: list[tuple[str, str]] = []
        self.clock = lambda: int(time.time())

    # -- crypto, from the protocol ------------------------------------------------

    def encrypt(self, xml: str) -> str:
        body = xml.encode()
        plain = os.urandom(16) + struct.pack(">I", len(body)) + body + self.app_id.encode()
        pad = 32 - len(plain) % 32
        plain += bytes([pad]) * pad
        enc = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        dec = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        plain = dec.update(base64.b64decode(encrypted)) + dec.finalize()
        plain = plain[16 : -plain[-1]]
        (length,) = struct.unpack(">I", plain[:4])
        assert plain[4 + length :].decode() == self.app_id, "reply encrypted for another AppID"
        return plain[4 : 4 + length].decode()

    # -- sending --------------------------------------------------------------------

    def signed_query(self, timestamp: str | None = None, nonce: str = "n0nce") -> dict:
        timestamp = timestamp or str(self.clock())
        return {
            "timestamp": timestamp,
            "nonce": nonce,
            "signature": sha1_signature(self.token, timestamp, nonce),
        }

    def post_raw(self, body: bytes | str, query: dict) -> tuple[int, str]:
        url = self.url + "?" + urllib.parse.urlencode(query)
        data = body.encode() if isinstance(body, str) else body
        request = urllib.request.Request(url, data=data, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def push(self, xml: str, query: dict | None = None) -> dict | None:
        """Deliver one push as WeChat does; the reply as a dict, None for "success"."""
        query = dict(query or self.signed_query(nonce=os.urandom(4).hex()))
        body = xml
        if self.key:
            encrypted = self.encrypt(xml)
            query["encrypt_type"] = "aes"
            query["msg_signature"] = sha1_signature(
                self.token, query["timestamp"], query["nonce"], encrypted
            )
            body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        status, text = self.post_raw(body, query)
        if status != 200:
            raise HttpError(status, text)
        return self.read_reply(text)

    def read_reply(self, text: str) -> dict | None:
        if text in ("success", ""):
            return None
        root = ET.fromstring(text)
        if self.key:
            encrypted = root.findtext("Encrypt")
            expected = sha1_signature(
                self.token, root.findtext("TimeStamp"), root.findtext("Nonce"), encrypted
            )
            assert root.findtext("MsgSignature") == expected, "reply signature does not hold"
            root = ET.fromstring(self.decrypt(encrypted))
        reply = {child.tag: (child.text or "") for child in root}
        if reply.get("MsgType") == "news":
            item = root.find("Articles/item")
            reply["article"] = {child.tag: (child.text or "") for child in item}
        return reply

    # -- messages, as WeChat words them ---------------------------------------------

    def head(self, openid: str, kind: str, created: int | None = None) -> str:
        return (
            f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{created or self.clock()}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>"
        )

    def text_xml(self, openid: str, content: str, msg_id: int | None = None) -> str:
        msg_id = msg_id or next(_msg_ids)
        return (
            f"<xml>{self.head(openid, 'text')}<Content>{cdata(content)}</Content>"
            f"<MsgId>{msg_id}</MsgId></xml>"
        )

    def event_xml(self, openid: str, event: str, key: str = "", created: int | None = None) -> str:
        key_xml = f"<EventKey><![CDATA[{escape(key)}]]></EventKey>" if key else ""
        return f"<xml>{self.head(openid, 'event', created)}<Event><![CDATA[{event}]]></Event>{key_xml}</xml>"

    def _say(self, openid: str, said: str, xml: str) -> dict | None:
        self.transcript.append((openid, said))
        reply = self.push(xml)
        self.transcript.append(("bot", describe(reply)))
        return reply

    def text(self, openid: str, content: str) -> dict | None:
        return self._say(openid, content, self.text_xml(openid, content))

    def click(self, openid: str, key: str) -> dict | None:
        return self._say(openid, f"[menu {key}]", self.event_xml(openid, "CLICK", key))

    def subscribe(self, openid: str, scene: str = "") -> dict | None:
        key = f"qrscene_{scene}" if scene else ""
        return self._say(
            openid, f"[follow {scene}]".strip(), self.event_xml(openid, "subscribe", key)
        )

    def unsubscribe(self, openid: str) -> dict | None:
        return self._say(openid, "[unfollow]", self.event_xml(openid, "unsubscribe"))

    def scan(self, openid: str, scene: str) -> dict | None:
        return self._say(openid, f"[scan {scene}]", self.event_xml(openid, "SCAN", scene))

    def image(self, openid: str) -> dict | None:
        xml = (
            f"<xml>{self.head(openid, 'image')}<PicUrl><![CDATA[http://x/p.jpg]]></PicUrl>"
            f"<MediaId><![CDATA[m1]]></MediaId><MsgId>{next(_msg_ids)}</MsgId></xml>"
        )
        return self._say(openid, "[image]", xml)

    def location(self, openid: str, label: str) -> dict | None:
        xml = (
            f"<xml>{self.head(openid, 'location')}<Location_X>22.54</Location_X>"
            f"<Location_Y>113.95</Location_Y><Scale>15</Scale><Label><![CDATA[{label}]]></Label>"
            f"<MsgId>{next(_msg_ids)}</MsgId></xml>"
        )
        return self._say(openid, f"[location {label}]", xml)

    def transcript_text(self) -> str:
        return "\n".join(f"{who}: {what}" for who, what in self.transcript) + "\n"


def seen(reply: dict) -> dict:
    """What the user sees of a reply: all but CreateTime, which is stamped when it is sent."""
    return {k: v for k, v in reply.items() if k != "CreateTime"}


def describe(reply: dict | None) -> str:
    if reply is None:
        return "(no reply)"
    if reply["MsgType"] == "text":
        return reply["Content"]
    a = reply["article"]
    return f"[card] {a['Title']} | {a['Description']} | {a['PicUrl']} | {a['Url']}"
