"""WeChat's side of the wire (handlers/wire.py), played by the /dev sandbox, the tests and the
bench: a push sealed as WeChat sends it, and our reply read as WeChat reads it, with every
rule of WeChat's it breaks.

Usage::

    query, body = seal_push(push_xml(fields), token, crypt, now)
    opened = open_reply(answer, msg, crypt, now)    # opened.problems: why WeChat would drop it
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from werobot.crypto import MessageCrypt

from bot.chat.incoming import Incoming
from handlers.wire import (
    ACK,
    MAX_CLOCK_SKEW,
    REPLY_TYPES,
    USER_MESSAGES,
    WireError,
    cdata,
    child_of,
    parse,
    same,
    seconds,
    signature,
    text_of,
)


def push_xml(fields: dict[str, str | int]) -> str:
    """A push as WeChat writes it: strings in CDATA (never escaped twice), numbers bare."""
    parts = []
    for name, value in fields.items():
        inner = str(value) if isinstance(value, int) else f"<![CDATA[{cdata(value)}]]>"
        parts.append(f"<{name}>{inner}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def seal_push(
    xml: str, token: str, crypt: MessageCrypt | None, now: float, account: str = ""
) -> tuple[dict[str, str], str]:
    """The query string and body WeChat would POST for this push."""
    query = {"timestamp": str(int(now)), "nonce": secrets.token_hex(5)}
    query["signature"] = signature(token, query["timestamp"], query["nonce"])
    if crypt is None:
        return query, xml
    encrypt = crypt.prp_crypto.encrypt(xml, crypt.app_id).decode()
    query["encrypt_type"] = "aes"
    query["msg_signature"] = signature(token, query["timestamp"], query["nonce"], encrypt)
    return query, push_xml({"ToUserName": account, "Encrypt": encrypt})


@dataclass(frozen=True)
class Opened:
    """A reply as WeChat reads it; `problems` say why WeChat would drop it (empty: delivered)."""

    fields: dict | None  # None for `success` or an empty body
    problems: tuple[str, ...] = ()


def open_reply(answer: str, msg: Incoming, crypt: MessageCrypt | None, now: float) -> Opened:
    """Read our answer to `msg` the way WeChat does, and say what it would refuse."""
    if answer in (ACK, ""):
        return Opened(None)
    try:
        fields = parse(answer)
    except WireError:
        return Opened(None, ("the answer is not XML",))
    if crypt is not None:
        encrypt = text_of(fields.get("Encrypt"))
        stamp, nonce = text_of(fields.get("TimeStamp")), text_of(fields.get("Nonce"))
        if not encrypt:
            return Opened(fields, ("a plaintext reply to an encrypted push",))
        if not same(
            signature(crypt.token, stamp, nonce, encrypt), text_of(fields.get("MsgSignature"))
        ):
            return Opened(None, ("MsgSignature does not hold",))
        try:
            fields = parse(crypt.prp_crypto.decrypt(encrypt, crypt.app_id))
        except Exception:
            return Opened(None, ("cannot decrypt with our key and AppID",))
    return Opened(fields, tuple(reply_problems(fields, msg, now)))


def reply_problems(fields: dict, msg: Incoming, now: float) -> list[str]:
    """Every rule of WeChat's that this reply breaks (WECHAT.md §3)."""
    problems = []
    if fields.get("ToUserName") != msg.openid:
        problems.append(
            f"ToUserName is {fields.get('ToUserName')!r}, not the sender {msg.openid!r}"
        )
    if fields.get("FromUserName") != msg.account:
        problems.append(f"FromUserName is {fields.get('FromUserName')!r}, not the account")
    created = seconds(fields.get("CreateTime"))
    if created is None or abs(now - created) > MAX_CLOCK_SKEW:
        problems.append(
            f"CreateTime {fields.get('CreateTime')!r} is not the current time in seconds"
        )
    kind = fields.get("MsgType")
    if kind not in REPLY_TYPES:
        problems.append(f"MsgType {kind!r} is not one WeChat accepts")
    if kind == "text" and not text_of(fields.get("Content")):
        problems.append("a text reply with no Content")
    if kind == "news":
        items = child_of(fields, "Articles").get("item")
        count = len(items) if isinstance(items, list) else int(items is not None)
        most = 1 if msg.kind in USER_MESSAGES else 8
        if text_of(fields.get("ArticleCount")) != str(count):
            problems.append(f"ArticleCount {fields.get('ArticleCount')!r} but {count} articles")
        if not 1 <= count <= most:
            problems.append(f"{count} articles; WeChat takes 1 to {most} here")
    return problems
