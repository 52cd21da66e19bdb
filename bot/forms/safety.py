"""What a person types and the chat shows back must stay words: no markup, no links.

Usage::

    refuse_markup("祝你生日快乐", "祝福语")      # returns the text, or raises Invalid(Code.MARKUP_REFUSED)
    neutral("<a href=…>点此领取</a>")            # "＜a href=…＞点此领取＜/a＞": for what is echoed

WeChat renders `<a href>` in a text reply as a link sent by the official account,
and makes bare web addresses clickable: a blessing or a name that carries one
reaches a friend as the account's own invitation to click. So typed text that
the chat echoes refuses tags and links at the door, and every value a chat
template prints has its tag brackets turned into harmless full-width ones.
"""

from __future__ import annotations

import re

from bot.codes import Code
from bot.forms.base import Invalid

LINK = re.compile(
    r"[a-z][a-z0-9+.-]*://|www\.|\b[a-z0-9-]+\.(?:com|cn|net|org|top|xyz|io|cc|me|info|vip|"
    r"club|site|online|shop|link|app|ly|to)\b",
    re.I,
)
TAG = re.compile(r"<\s*/?\s*[a-z!?]", re.I)
_TAG_BRACKETS = re.compile(r"<(?=\s*/?\s*[A-Za-z!?])|(?<=[A-Za-z\"'/])>")


def has_markup(text: str) -> bool:
    return bool(TAG.search(text) or LINK.search(text))


def refuse_markup(text: str, label: str) -> str:
    if has_markup(text):
        raise Invalid(Code.MARKUP_REFUSED, label=label)
    return text


def neutral(value: object) -> object:
    """A value as a chat template prints it: tag brackets made full-width, all else as is."""
    if isinstance(value, str) and ("<" in value or ">" in value):
        return _TAG_BRACKETS.sub(lambda m: "＜" if m[0] == "<" else "＞", value)
    return value
