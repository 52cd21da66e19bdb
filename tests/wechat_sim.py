"""WeChat's side of the callback, as strict as WeChat: it signs, encrypts and posts every kind of
push the docs describe, and reads each reply the way WeChat does, refusing what WeChat would drop.

Usage::

    wx = WeChatSim(base_url, token="t", app_id="wx…", aes_key="…43 chars…" or "")
    reply = wx.text("o_user", "礼品")        # {"MsgType": "text", "Content": "…", …} (decrypted)
    wx.click("o_user", "GIFTS"); wx.subscribe("o_user", scene="TOKEN"); wx.scan("o_user", "TOKEN")
    wx.voice("o_user", "m1", recognition="礼品")        # and image, video, shortvideo, location, link, file
    wx.image("o_user", "m2")                            # a picture: its MediaId for getMedia
    wx.push_sample("event_scancode_push", "o_user", ScanResult="…")   # any file in tests/samples/
    wx.transcript                             # [("o_user", "礼品"), ("bot", "…")]

Every reply goes through `read_reply`, which raises `Dropped` (an AssertionError, so the test
fails and says why) for anything WeChat would not show: a reply not addressed To the sender and
From the account the push went to, a stale or missing CreateTime, a MsgType passive replies
cannot use or one without its fields, a news reply whose ArticleCount is not its number of items
(exactly one item when answering a user's message, at most eight for events), a reply later than
`deadline` seconds, and in safe mode anything but a well-signed envelope that decrypts (PKCS#7
checked) for our AppID. `success` and an empty body mean "acknowledged, nothing to show".

The rules and the samples come from WeChat's published docs (../shared/WECHAT.md §1–3 and the
sources named at the top of each tests/samples/*.xml), not from the bot's code.
A non-200 answer raises `HttpError`; tests that post malformed requests use `post_raw`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import os
import re
import string
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ACCOUNT = "gh_test_account"
SAMPLES = Path(__file__).resolve().parent / "samples"

# What WeChat accepts as a passive reply, and the fields each type cannot do without
# (the "是否必须: 是" rows of the passive-reply doc; Video's Title/Description and Music's
# Title/Description/MusicUrl/HQMusicUrl are optional there).
REQUIRED_FIELDS = {
    "text": ["Content"],
    "image": ["Image/MediaId"],
    "voice": ["Voice/MediaId"],
    "video": ["Video/MediaId"],
    "music": ["Music/ThumbMediaId"],
    "news": ["ArticleCount", "Articles"],
    "transfer_customer_service": [],
}
ARTICLE_FIELDS = ("Title", "Description", "PicUrl", "Url")
# Answering one of these a news reply may carry one article only (since 2018-10-12); events up to 8.
USER_MESSAGE_TYPES = {
    "text",
    "image",
    "voice",
    "video",
    "shortvideo",
    "location",
    "link",
    "file",
}
MAX_ARTICLES = 8
ENVELOPE_FIELDS = ("Encrypt", "MsgSignature", "TimeStamp", "Nonce")

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


class Dropped(AssertionError):
    """WeChat would drop this reply: the user sees nothing, or "该公众号暂时无法提供服务"."""

    def __init__(self, reason: str, body: str = ""):
        super().__init__(f"WeChat drops this reply: {reason}" + (f"\n{body[:500]}" if body else ""))
        self.reason = reason
        self.body = body


@dataclass(frozen=True)
class Push:
    """What WeChat knows about a push it sent: who sent it, to which account, what it was."""

    openid: str
    account: str
    msg_type: str
    event: str = ""
    encrypted: bool = False

    @classmethod
    def of(cls, xml: str, encrypted: bool = False) -> Push:
        """Read a push we are about to send (we are WeChat here, so it must be well formed)."""
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as exc:
            raise ValueError(
                f"push() sends well-formed pushes; use post_raw for junk: {exc}"
            ) from None
        return cls(
            openid=_text(root, "FromUserName"),
            account=_text(root, "ToUserName"),
            msg_type=_text(root, "MsgType"),
            event=_text(root, "Event"),
            encrypted=encrypted,
        )

    @property
    def from_user(self) -> bool:
        """A user's message (not an event): its news reply may carry one article only."""
        return self.msg_type in USER_MESSAGE_TYPES


class WeChatSim:
    def __init__(self, base_url: str, token: str, app_id: str, aes_key: str = ""):
        self.url = base_url.rstrip("/") + "/wechat"
        self.token = token
        self.app_id = app_id
        self.key = base64.b64decode(aes_key + "=") if aes_key else None
        self.transcript: list[tuple[str, str]] = []
        self.clock = lambda: int(time.time())
        self.deadline = 5.0  # seconds WeChat waits for the reply before it gives up and retries
        self.create_time_skew = 300  # how far a reply's CreateTime may be from self.clock()
        self.last_push: Push | None = None

    # -- crypto, from the protocol (§1) --------------------------------------------

    def encrypt(self, xml: str, random_prefix: bytes | None = None) -> str:
        """16 random bytes, the length, the XML, our AppID; PKCS#7 to 32 bytes; AES-256-CBC."""
        body = xml.encode()
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        plain = prefix + struct.pack(">I", len(body)) + body + self.app_id.encode()
        pad = 32 - len(plain) % 32
        plain += bytes([pad]) * pad
        enc = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def unpack(self, encrypted: str) -> tuple[str, str]:
        """Decrypt one ciphertext: (the XML, the AppID it was sealed for); Dropped if malformed."""
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise Dropped("Encrypt is not base64") from None
        if not raw or len(raw) % 16:
            raise Dropped(f"Encrypt is {len(raw)} bytes, not whole AES blocks")
        dec = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        plain = dec.update(raw) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
            raise Dropped(f"bad PKCS#7 padding (last byte {pad}) after decryption")
        content = plain[16:-pad]
        if len(content) < 4:
            raise Dropped("decrypted text too short to hold the message length")
        (length,) = struct.unpack(">I", content[:4])
        if 4 + length > len(content):
            raise Dropped(f"message length {length} runs past the decrypted text")
        try:
            return content[4 : 4 + length].decode(), content[4 + length :].decode()
        except UnicodeDecodeError:
            raise Dropped("decrypted message or AppID is not UTF-8") from None

    def decrypt(self, encrypted: str) -> str:
        xml, app_id = self.unpack(encrypted)
        if app_id != self.app_id:
            raise Dropped(f"reply encrypted for AppID {app_id!r}, not ours ({self.app_id!r})")
        return xml

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
            with urllib.request.urlopen(request, timeout=max(10, self.deadline * 2)) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def push(self, xml: str, query: dict | None = None) -> dict | None:
        """Deliver one push as WeChat does; the checked reply as a dict, None for "success"."""
        query = dict(query or self.signed_query(nonce=os.urandom(4).hex()))
        push = Push.of(xml, encrypted=bool(self.key))
        self.last_push = push
        body = xml
        if self.key:
            encrypted = self.encrypt(xml)
            query["encrypt_type"] = "aes"
            query["msg_signature"] = sha1_signature(
                self.token, query["timestamp"], query["nonce"], encrypted
            )
            body = f"<xml><ToUserName>{cdata(push.account)}</ToUserName><Encrypt>{cdata(encrypted)}</Encrypt></xml>"
        started = time.monotonic()
        status, text = self.post_raw(body, query)
        took = time.monotonic() - started
        if status != 200:
            raise HttpError(status, text)
        if took > self.deadline:
            raise Dropped(
                f"the reply took {took:.2f} s, past WeChat's {self.deadline:g} s deadline "
                "(WeChat gives up and retries the push)",
                text,
            )
        return self.read_reply(text, push)

    # -- reading replies, as WeChat does (§1, §3) --------------------------------------

    def read_reply(self, text: str, push: Push | None = None) -> dict | None:
        """Check a reply to `push` (default: the last one sent) and return what the user sees."""
        push = push or self.last_push
        if push is None:
            raise ValueError("read_reply needs the push it answers: push() one first")
        if text in ("success", ""):
            return None
        root = _parse(text, "reply")
        if push.encrypted:
            root = self._open_envelope(root, text)
        elif root.find("Encrypt") is not None:
            raise Dropped("an encrypted envelope answering a plaintext push", text)
        check_reply(root, push, now=self.clock(), skew=self.create_time_skew)
        return as_dict(root)

    def _open_envelope(self, root: ET.Element, text: str) -> ET.Element:
        if root.find("Encrypt") is None:
            raise Dropped(
                "a plaintext reply to an encrypted push (safe mode needs <Encrypt>)", text
            )
        for tag in ENVELOPE_FIELDS:
            if not _text(root, tag):
                raise Dropped(f"the encrypted envelope has no {tag}", text)
        encrypted = _text(root, "Encrypt")
        expected = sha1_signature(
            self.token, _text(root, "TimeStamp"), _text(root, "Nonce"), encrypted
        )
        if _text(root, "MsgSignature") != expected:
            raise Dropped(
                "MsgSignature is not sha1(sorted(token, TimeStamp, Nonce, Encrypt))", text
            )
        return _parse(self.decrypt(encrypted), "decrypted reply")

    # -- pushes, as WeChat words them -------------------------------------------------

    def sample_xml(
        self,
        kind: str,
        openid: str,
        created: int | None = None,
        msg_id: int | None = None,
        **fields,
    ) -> str:
        """The documented push `tests/samples/<kind>.xml`, from openid to our account.

        `fields` replace the text of the sample's elements of that name (all of them):
        `EventKey="GIFTS"`, `Content="礼品"`. A name the sample lacks is a KeyError, so a
        test cannot invent fields WeChat does not send.
        """
        xml = load_sample(kind)
        xml = string.Template(xml).substitute(
            ToUserName=ACCOUNT,
            FromUserName=openid,
            CreateTime=created or self.clock(),
            MsgId=msg_id or next(_msg_ids),
        )
        for name, value in fields.items():
            xml = set_field(xml, name, value, kind)
        return xml

    def push_sample(self, kind: str, openid: str, **fields) -> dict | None:
        """Send the documented push `kind` (a file name in tests/samples/) from openid."""
        return self._say(openid, f"[{kind}]", self.sample_xml(kind, openid, **fields))

    def head(self, openid: str, kind: str, created: int | None = None) -> str:
        return (
            f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{created or self.clock()}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>"
        )

    def text_xml(self, openid: str, content: str, msg_id: int | None = None) -> str:
        return self.sample_xml("message_text", openid, msg_id=msg_id, Content=content)

    def event_xml(self, openid: str, event: str, key: str = "", created: int | None = None) -> str:
        """Any event by name (the samples give each documented one its other fields)."""
        key_xml = f"<EventKey>{cdata(key)}</EventKey>" if key else ""
        return f"<xml>{self.head(openid, 'event', created)}<Event>{cdata(event)}</Event>{key_xml}</xml>"

    def _say(self, openid: str, said: str, xml: str) -> dict | None:
        self.transcript.append((openid, said))
        reply = self.push(xml)
        self.transcript.append(("bot", describe(reply)))
        return reply

    def text(self, openid: str, content: str) -> dict | None:
        return self._say(openid, content, self.text_xml(openid, content))

    def click(self, openid: str, key: str) -> dict | None:
        return self.push_sample_as(f"[menu {key}]", "event_click", openid, EventKey=key)

    def view(self, openid: str, url: str, menu_id: str = "MENUID") -> dict | None:
        return self.push_sample_as(
            f"[link {url}]", "event_view", openid, EventKey=url, MenuId=menu_id
        )

    def subscribe(self, openid: str, scene: str = "") -> dict | None:
        said = f"[follow {scene}]".strip()
        if not scene:
            return self.push_sample_as(said, "event_subscribe", openid)
        return self.push_sample_as(
            said, "event_subscribe_qrscene", openid, EventKey=f"qrscene_{scene}"
        )

    def unsubscribe(self, openid: str) -> dict | None:
        return self.push_sample_as("[unfollow]", "event_unsubscribe", openid)

    def scan(self, openid: str, scene: str) -> dict | None:
        return self.push_sample_as(f"[scan {scene}]", "event_scan", openid, EventKey=scene)

    def location_event(
        self, openid: str, latitude: float = 23.137466, longitude: float = 113.352425
    ) -> dict | None:
        return self.push_sample_as(
            "[location report]", "event_location", openid, Latitude=latitude, Longitude=longitude
        )

    def image(self, openid: str, media_id: str = "media_id") -> dict | None:
        return self.push_sample_as("[image]", "message_image", openid, MediaId=media_id)

    def voice(
        self, openid: str, media_id: str = "media_id", recognition: str | None = None,
        fmt: str = "amr",
    ):  # fmt: skip
        """A voice message (Format amr or speex); with `recognition`, as WeChat sends it once
        speech recognition is on."""
        if recognition is None:
            return self.push_sample_as(
                "[voice]", "message_voice", openid, MediaId=media_id, Format=fmt
            )
        return self.push_sample_as(
            f"[voice] {recognition}",
            "message_voice_recognition",
            openid,
            MediaId=media_id,
            Format=fmt,
            Recognition=recognition,
        )

    def video(self, openid: str, media_id: str = "media_id") -> dict | None:
        return self.push_sample_as("[video]", "message_video", openid, MediaId=media_id)

    def shortvideo(self, openid: str, media_id: str = "media_id") -> dict | None:
        return self.push_sample_as("[short video]", "message_shortvideo", openid, MediaId=media_id)

    def location(self, openid: str, label: str) -> dict | None:
        return self.push_sample_as(f"[location {label}]", "message_location", openid, Label=label)

    def link(self, openid: str, title: str, url: str, description: str = "") -> dict | None:
        return self.push_sample_as(
            f"[link {title}]", "message_link", openid, Title=title, Url=url, Description=description
        )

    def file(self, openid: str, title: str) -> dict | None:
        return self.push_sample_as(f"[file {title}]", "message_file", openid, Title=title)

    def push_sample_as(self, said: str, kind: str, openid: str, **fields) -> dict | None:
        """`push_sample` with the transcript line of our choosing."""
        return self._say(openid, said, self.sample_xml(kind, openid, **fields))

    def transcript_text(self) -> str:
        return "\n".join(f"{who}: {what}" for who, what in self.transcript) + "\n"


# -- the checks, one rule each -----------------------------------------------------------


def check_reply(root: ET.Element, push: Push, now: int, skew: int = 300) -> None:
    """Everything WeChat checks in a plaintext reply XML; Dropped names the first failure."""
    if root.tag != "xml":
        raise Dropped(f"the root element is <{root.tag}>, not <xml>")
    check_addressing(root, push)
    check_create_time(root, now, skew)
    msg_type = _text(root, "MsgType")
    if msg_type not in REQUIRED_FIELDS:
        raise Dropped(f"MsgType {msg_type!r} is not one WeChat accepts for a passive reply")
    for path in REQUIRED_FIELDS[msg_type]:
        if root.find(path) is None:
            raise Dropped(f"a {msg_type} reply without {path}")
    if msg_type == "text" and not _text(root, "Content"):
        raise Dropped("a text reply with an empty Content")
    if msg_type == "news":
        check_news(root, push)


def check_addressing(root: ET.Element, push: Push) -> None:
    to, sender = _text(root, "ToUserName"), _text(root, "FromUserName")
    if (to, sender) == (push.account, push.openid):
        raise Dropped(f"addressed backwards: To {to!r} (the account), From {sender!r} (the user)")
    if to != push.openid:
        raise Dropped(f"ToUserName is {to!r}, not the sender's OpenID {push.openid!r}")
    if sender != push.account:
        raise Dropped(
            f"FromUserName is {sender!r}, not the account the push went to {push.account!r}"
        )


def check_create_time(root: ET.Element, now: int, skew: int) -> None:
    created = _text(root, "CreateTime")
    if not created:
        raise Dropped("no CreateTime")
    if not re.fullmatch(r"[0-9]+", created):
        raise Dropped(f"CreateTime {created!r} is not a unix time in digits")
    if abs(int(created) - now) > skew:
        raise Dropped(f"CreateTime {created} is {int(created) - now:+d} s from now ({now})")


def check_news(root: ET.Element, push: Push) -> None:
    items = root.findall("Articles/item")
    count = _text(root, "ArticleCount")
    if not re.fullmatch(r"[0-9]+", count) or int(count) != len(items):
        raise Dropped(f"ArticleCount {count!r} but {len(items)} <item>s in Articles")
    limit = 1 if push.from_user else MAX_ARTICLES
    if not 1 <= len(items) <= limit:
        answering = f"a user's {push.msg_type} message" if push.from_user else "an event"
        raise Dropped(f"{len(items)} articles answering {answering} (WeChat allows 1 to {limit})")
    for n, item in enumerate(items, 1):
        missing = [tag for tag in ARTICLE_FIELDS if item.find(tag) is None]
        if missing:
            raise Dropped(f"article {n} has no {', '.join(missing)}")
        if not _text(item, "Title"):
            raise Dropped(f"article {n} has an empty Title")


# -- helpers -------------------------------------------------------------------------


def load_sample(kind: str) -> str:
    """A sample push with its source comment removed (WeChat sends no comments)."""
    path = SAMPLES / f"{kind}.xml"
    if not path.is_file():
        known = ", ".join(sample_kinds())
        raise KeyError(f"no sample {kind!r}; known: {known}")
    return re.sub(r"^\s*<!--.*?-->\s*", "", path.read_text(encoding="utf-8"), flags=re.S)


def sample_kinds() -> list[str]:
    return sorted(p.stem for p in SAMPLES.glob("*.xml"))


def set_field(xml: str, name: str, value, kind: str = "") -> str:
    """Replace the text of every <name> element, keeping CDATA where the sample had it."""
    tag = re.escape(name)
    pattern = re.compile(rf"<{tag}>(.*?)</{tag}>", re.S)
    if not pattern.search(xml):
        raise KeyError(f"sample {kind!r} has no <{name}> (WeChat does not send it there)")

    def replace(match: re.Match) -> str:
        text = str(value)
        inner = cdata(text) if match.group(1).lstrip().startswith("<![CDATA[") else escape(text)
        return f"<{name}>{inner}</{name}>"

    return pattern.sub(replace, xml)


def _parse(text: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise Dropped(f"the {what} is not well-formed XML ({exc})", text) from None


def _text(element: ET.Element, path: str) -> str:
    return (element.findtext(path) or "").strip()


def as_dict(root: ET.Element) -> dict:
    """What the user sees: each field's text; media as dicts; news items as `articles`."""
    reply: dict = {}
    for child in root:
        if child.tag == "Articles":
            reply["articles"] = [{f.tag: f.text or "" for f in item} for item in child]
        elif len(child):
            reply[child.tag] = {f.tag: f.text or "" for f in child}
        else:
            reply[child.tag] = child.text or ""
    if reply.get("articles"):
        reply["article"] = reply["articles"][0]
    return reply


def seen(reply: dict) -> dict:
    """What the user sees of a reply: all but CreateTime, which is stamped when it is sent."""
    return {k: v for k, v in reply.items() if k != "CreateTime"}


def describe(reply: dict | None) -> str:
    if reply is None:
        return "(no reply)"
    if reply["MsgType"] == "text":
        return reply["Content"]
    if reply["MsgType"] == "news":
        a = reply["article"]
        return f"[card] {a['Title']} | {a['Description']} | {a['PicUrl']} | {a['Url']}"
    return f"[{reply['MsgType']}]"
