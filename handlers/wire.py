"""WeChat's callback wire format, both ways, in one module: the callback reads pushes and writes
replies with it, and the /dev sandbox plays WeChat with the same code.

The callback::

    check_query(token, query, now)              # WireError(403) on a bad signature or old time
    fields = open_push(body, query, crypt)      # the push's XML as a dict (decrypted, AppID checked)
    msg = incoming(fields)                      # bot.chat.incoming.Incoming: sender, account, kind, text …
    answer = write_reply(reply, msg, crypt)     # XML To the sender From the account, or "success"

The sandbox plays WeChat with this module's rules (handlers/wire_peer.py).

Protocol facts (../shared/WECHAT.md §1–3): the signature is sha1 of the sorted token, timestamp
and nonce; in safe mode `msg_signature` adds the `Encrypt` text, and the AppID at the end of
the plaintext must be ours. A reply goes To the sender's OpenID and From the account's id (the
push's ToUserName); text lives in CDATA, where a `]]>` must be split; a news reply answering a
user's message carries exactly one article.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import re
from xml.etree import ElementTree

from werobot.crypto import MessageCrypt
from werobot.replies import Article, ArticlesReply, TextReply, TransferCustomerServiceReply

from bot.chat.incoming import Incoming
from bot.replies import Card, Reply, Text, Transfer

MAX_CLOCK_SKEW = 300  # seconds; an older signed request is a replay
TIME_DIGITS = 12  # a Unix time in seconds has 10 digits until the year 2286
# Pushes nest four deep at most (xml > SendPicsInfo > PicList > item > PicMd5Sum); reading
# nesting without a bound would be recursion without one.
MAX_DEPTH = 8
# WeChat writes UTF-8; these marks, or a declaration naming another encoding, mean another.
_OTHER_BOMS = (codecs.BOM_UTF32_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE)
_DECLARED = re.compile(r"""\ufeff?\s*<\?xml\s[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")
ACK = "success"  # WeChat's "received, nothing to say": no retry, nothing shown
# Trailing punctuation WeChat's speech recognition adds ("13800138000。"): not what was meant.
SPOKEN_TAIL = "。.！!？?，,、 "
USER_MESSAGES = frozenset(
    {"text", "image", "voice", "video", "shortvideo", "location", "link", "file"}
)
REPLY_TYPES = frozenset(
    {"text", "image", "voice", "video", "music", "news", "transfer_customer_service"}
)


class WireError(Exception):
    """Not a push from WeChat for us: `status` is the HTTP answer (400 malformed, 403 forged)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def same(expected: str, given: str) -> bool:
    """Constant-time comparison that takes any text (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode(), given.encode())


def make_crypt(token: str, encoding_aes_key: str, app_id: str) -> MessageCrypt | None:
    """Safe mode's cipher, or None in plaintext mode."""
    return MessageCrypt(token, encoding_aes_key, app_id) if encoding_aes_key else None


# -- reading a push (the callback) ----------------------------------------------------


def check_query(token: str, query: dict[str, str], now: float) -> None:
    """The plain signature and the timestamp, before anything reads the body."""
    expected = signature(token, query.get("timestamp", ""), query.get("nonce", ""))
    if not same(expected, query.get("signature", "")):
        raise WireError(403, "bad signature")
    stamp = seconds(query.get("timestamp"))
    if stamp is None or abs(now - stamp) > MAX_CLOCK_SKEW:
        raise WireError(403, "stale timestamp")


def seconds(text: object) -> int | None:
    """A Unix time written as WeChat writes it (1–12 ASCII digits), or None: `int()` of 5,000
    digits raises, and of `①` or `٣` is no time at all."""
    if isinstance(text, str) and 0 < len(text) <= TIME_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None


def open_push(body: bytes, query: dict[str, str], crypt: MessageCrypt | None) -> dict:
    """The push's plaintext XML as a dict; safe mode's msg_signature and AppID are checked."""
    encrypted = query.get("encrypt_type", "raw") == "aes"
    if crypt is None:
        if encrypted:
            raise WireError(400, "safe mode message, but no encoding_aes_key set")
        return parse(body)
    if not encrypted:
        raise WireError(400, "plaintext message in safe mode")
    encrypt = parse(body).get("Encrypt")
    if not isinstance(encrypt, str):
        raise WireError(400, "no Encrypt element")
    expected = signature(crypt.token, query.get("timestamp", ""), query.get("nonce", ""), encrypt)
    if not same(expected, query.get("msg_signature", "")):
        raise WireError(403, "bad msg_signature")
    try:
        xml = crypt.prp_crypto.decrypt(encrypt, crypt.app_id)
    except Exception:  # bad base64, padding or AppID: all "not from WeChat for us"
        raise WireError(400, "cannot decrypt") from None
    return parse(xml)


def incoming(fields: dict) -> Incoming:
    """A push in our words; a voice message WeChat transcribed counts as the text said."""
    openid, kind, created = (
        fields.get("FromUserName"),
        fields.get("MsgType"),
        seconds(fields.get("CreateTime")),
    )
    valid = isinstance(openid, str) and 0 < len(openid) <= 64 and isinstance(kind, str)
    if not valid or created is None:
        raise WireError(400, "missing FromUserName, MsgType or CreateTime")
    kind = kind.lower()
    text = text_of(fields.get("Content"))
    spoken = kind == "voice" and text_of(fields.get("Recognition")).strip()
    if spoken:
        kind, text = "text", spoken.rstrip(SPOKEN_TAIL) or spoken
    return Incoming(
        openid=openid,
        account=text_of(fields.get("ToUserName")),
        kind=kind,
        create_time=created,
        msg_id=text_of(fields.get("MsgId"))[:64],
        text=text,
        event=text_of(fields.get("Event")).lower() if kind == "event" else "",
        event_key=text_of(fields.get("EventKey")),
        label=text_of(fields.get("Label")),
        spoken=bool(spoken),
        media_id=text_of(fields.get("MediaId"))[:128] if kind in ("image", "voice", "text") else "",
        media_format=text_of(fields.get("Format"))[:16].lower(),
        scan_result=text_of(child_of(fields, "ScanCodeInfo").get("ScanResult")),
    )


# -- writing a reply ------------------------------------------------------------------


def write_reply(
    reply: Reply, msg: Incoming, crypt: MessageCrypt | None, now: int | None = None
) -> str:
    """The HTTP answer to a push: `success` when there is nothing to say, else the reply XML
    (`now`: its CreateTime, the server's clock by default)."""
    if reply is None:
        return ACK
    xml = reply_xml(reply, msg, now)
    return crypt.encrypt_message(xml) if crypt else xml


def reply_xml(reply: Text | Card | Transfer, msg: Incoming, now: int | None = None) -> str:
    # WeRoBot writes `target` into ToUserName and `source` into FromUserName.
    address = {"target": cdata(msg.openid), "source": cdata(msg.account)}
    if now is not None:
        address["time"] = now
    if isinstance(reply, Text):
        return TextReply(content=cdata(reply.content), **address).render()
    if isinstance(reply, Transfer):  # to whichever agent of WeChat's customer service is free
        return TransferCustomerServiceReply(**address).render()
    news = ArticlesReply(**address)
    news.add_article(
        Article(
            title=cdata(reply.title),
            description=cdata(reply.description),
            img=cdata(reply.picurl),
            url=cdata(reply.url),
        )
    )
    return news.render()


def cdata(text: str) -> str:
    """Text safe inside WeRoBot's `<![CDATA[…]]>`: a `]]>` typed by a user must not end it."""
    return text.replace("]]>", "]]]]><![CDATA[>")


# -- reading XML ------------------------------------------------------------------------


def parse(raw: bytes | str) -> dict:
    """Push or reply XML as a dict of its elements; WireError(400) for anything else.

    A leaf is its text (stripped, as WeChat's pushes are read by everyone), an element with
    children a dict, a repeated child a list; nesting deeper than MAX_DEPTH is no push.
    WeChat writes UTF-8 and never a DTD: a body in another encoding is refused, and the parser
    itself refuses any DTD where it starts, before its first declaration is read, whatever the
    bytes look like: entity definitions are how XML bombs and external entities come in, and
    only a DTD defines them (an undefined entity is malformed XML).
    """
    text = _utf8(raw)
    parser = ElementTree.XMLParser(target=_NoDTD())  # ElementTree's C parser and tree builder
    try:
        parser.feed(text)  # text, so expat reads it as UTF-8
        root = parser.close()
    except _DTD:
        raise WireError(400, "a DTD in a push") from None
    except ElementTree.ParseError:
        raise WireError(400, "malformed XML") from None
    if root.tag != "xml" or not len(root):
        raise WireError(400, "malformed XML")
    return _element(root, 0)


class _DTD(Exception):
    """A document type declaration met in a push."""


class _NoDTD(ElementTree.TreeBuilder):
    """ElementTree's tree builder, stopping the parse at `<!DOCTYPE` (what defusedxml's
    `forbid_dtd` does, in C: half the time of its pure-Python parser, issue 27)."""

    def doctype(self, name, pubid, system):
        raise _DTD


def _utf8(raw: bytes | str) -> str:
    """The body as text when it is UTF-8 through and through; WireError(400) when it is not:
    a UTF-16 or UTF-32 byte-order mark, a declaration naming another encoding, bytes that do
    not decode, or NUL characters (UTF-16 or UTF-32 written without a mark)."""
    if isinstance(raw, bytes):
        if raw.startswith(_OTHER_BOMS):
            raise WireError(400, "not UTF-8: a UTF-16 or UTF-32 byte-order mark")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise WireError(400, "not UTF-8") from None
    declared = _DECLARED.match(raw)
    if declared and declared[1].lower() not in ("utf-8", "utf8"):
        raise WireError(400, f"not UTF-8: declared {declared[1][:20]!r}")
    if "\x00" in raw:
        raise WireError(400, "not UTF-8: NUL characters")
    return raw


def _element(element: ElementTree.Element, depth: int):
    if not len(element):
        return element.text.strip() if element.text else None
    if depth >= MAX_DEPTH:
        raise WireError(400, f"nested deeper than {MAX_DEPTH} elements")
    out: dict = {}
    for child in element:
        value = _element(child, depth + 1)
        if child.tag not in out:
            out[child.tag] = value
        elif isinstance(out[child.tag], list):
            out[child.tag].append(value)
        else:
            out[child.tag] = [out[child.tag], value]
    return out


def text_of(value) -> str:
    return value if isinstance(value, str) else ""


def child_of(fields: dict, name: str) -> dict:
    """A nested element as a dict ({} when absent or not an element)."""
    value = fields.get(name)
    return value if isinstance(value, dict) else {}
