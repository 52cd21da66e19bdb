"""A push from WeChat in our words (`Incoming`), and what it carries beside its text: a picture
or voice for a greeting, a change of subscription.

Usage::

    msg = Incoming(openid="o_a", kind="text", create_time=1790000000, text="礼品")
    msg.dedupe_key                 # "msg:<MsgId>", or sender + time + event for events
    media_of(msg)                  # ("picture" | "voice", what a greeting keeps) or None
    subscription(msg)              # True / False for subscribe / unsubscribe, else None
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.gifting import media


@dataclass(frozen=True)
class Incoming:
    """A push from WeChat, in our words: kind is text/image/voice/location/…/event."""

    openid: str
    kind: str
    create_time: int
    account: str = ""  # the Official Account's id (the push's ToUserName): a reply comes from it
    msg_id: str = ""
    text: str = ""
    event: str = ""  # lower case: subscribe, unsubscribe, scan, click, view
    event_key: str = ""
    label: str = ""  # a location message's place name
    spoken: bool = False  # text WeChat recognised in a voice message
    media_id: str = ""  # a picture's or voice's temporary media at WeChat (kept 3 days)
    media_format: str = ""  # a voice's: amr or speex
    scan_result: str = ""  # what a scancode_* menu event scanned

    @property
    def dedupe_key(self) -> str:
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"evt:{self.openid}:{self.create_time}:{self.event}:{self.event_key}"[:128]


def media_of(msg: Incoming) -> tuple[str, dict] | None:
    """A picture or voice the message carries, as a greeting keeps it (bot/gifting/media.py):
    (kind, what is kept); a voice keeps the words WeChat heard in it."""
    if not msg.media_id:
        return None
    if msg.kind == "image":
        return "picture", media.sent(msg.media_id)
    if msg.kind == "voice" or msg.spoken:
        words = msg.text if msg.spoken else ""
        return "voice", media.sent(msg.media_id, msg.media_format or "amr", words)
    return None


def subscription(msg: Incoming) -> bool | None:
    if msg.kind == "event" and msg.event in ("subscribe", "unsubscribe"):
        return msg.event == "subscribe"
    return None
