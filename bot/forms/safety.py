r"""What a person types and others read must stay plain words: nothing hidden, no markup, no links.

Usage::

    free_text("祝你生日快乐", "祝福语", lines=True)   # the text, or Invalid (one of the two below)
    refuse_hidden("李\u202e四", "姓名")            # Invalid(Code.HIDDEN_CHARACTERS, label="姓名")
    refuse_markup("快看 gift-claim.ru/x", "留言")   # Invalid(Code.MARKUP_REFUSED, label="留言")
    neutral("<a href=…>点此领取</a>")               # "＜a href=…＞点此领取＜/a＞": for what is echoed

Every field a person fills in freely (a blessing, an address, a thank-you note; a name, whose
link is "no name" in its own words) goes through these rules, in chat and on the web, because
what they type reaches someone else: a friend's chat and card, the giver's chat, the courier's
export.

**Hidden characters.** A right-to-left override (U+202E) turns `gpj.exe` into `exe.jpg`; a
zero-width space (U+200B), an isolate (U+2066) or a tag character (U+E0000–E007F) makes a text
read unlike what it holds, or smuggles words nobody sees. Refused: control characters (but a
line break where a field has lines), format characters (Cf), line and paragraph separators,
surrogates and private-use characters, the Hangul fillers (letters that draw nothing) and the
variation selectors beyond the sixteen emoji use. A zero-width joiner is kept between two
emoji, which it glues into one (👨‍👩‍👧).

**Links and markup.** WeChat renders `<a href>` in a text reply as a link sent by the official
account, and makes web addresses clickable: a blessing or a note that carries one reaches a
friend as the account's own invitation to click. The text is folded (NFKC: `ｗｗｗ．ｅｖｉｌ．ｃｏｍ`
is `www.evil.com`) and refused with a tag, a scheme (`https://`), `www.`, any host
`label.letters` (every top-level domain, new ones included: `gift-claim.dev`, `bit.do`) or an
IPv4 address. So an English full stop needs its space (`Hi.Tom` reads as a host).
And every value a chat template prints has its tag brackets made full-width and its hidden
characters dropped (values kept before these rules).
"""

from __future__ import annotations

import re
import unicodedata

from bot.codes import Code
from bot.forms.base import Invalid

LINK = re.compile(
    r"[a-z][a-z0-9+.-]*://"  # a scheme
    r"|www\."
    r"|[a-z0-9-]+\.[a-z]{2,}(?![a-z0-9])"  # a host: a label, a dot, a top-level domain
    r"|(?<![0-9])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9])",  # an IPv4 address
    re.I | re.ASCII,
)
TAG = re.compile(r"<\s*/?\s*[a-z!?]", re.I)
_TAG_BRACKETS = re.compile(r"<(?=\s*/?\s*[A-Za-z!?])|(?<=[A-Za-z\"'/])>")

_HIDDEN_KINDS = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
# Printable by Unicode's lights, yet nothing to see: the Hangul fillers, and the variation
# selectors 17-256 (no emoji needs them; they can carry a hidden message).
_BLANK = re.compile("[\u115f\u1160\u3164\uffa0\U000e0100-\U000e01ef]")
_JOINER = "\u200d"
_EMOJI_PRESENTATION = "\ufe0f"


def free_text(text: str, label: str, lines: bool = False) -> str:
    """Text typed freely that others will read: nothing hidden (`lines`: line breaks allowed),
    no markup, no link. Returns it as typed; raises Invalid with the reason."""
    refuse_hidden(text, label, lines)
    return refuse_markup(text, label)


def refuse_hidden(text: str, label: str, lines: bool = False) -> str:
    if hidden(text, lines):
        raise Invalid(Code.HIDDEN_CHARACTERS, label=label)
    return text


def refuse_markup(text: str, label: str) -> str:
    if has_markup(text):
        raise Invalid(Code.MARKUP_REFUSED, label=label)
    return text


def has_markup(text: str) -> bool:
    folded = unicodedata.normalize("NFKC", text)
    return bool(TAG.search(folded) or LINK.search(folded))


def hidden(text: str, lines: bool = False) -> list[int]:
    """Where `text` holds a character a reader cannot see (positions; empty when none)."""
    if text.isprintable() and not _BLANK.search(text):
        return []  # the common case, at C speed: no control, format or separator character
    return [
        i for i, ch in enumerate(text)
        if not (ch == "\n" and lines or ch == _JOINER and _joins_emoji(text, i))
        and (unicodedata.category(ch) in _HIDDEN_KINDS or _BLANK.match(ch))
    ]  # fmt: skip


def neutral(value: object) -> object:
    """A value as a chat template prints it: tag brackets made full-width, hidden characters
    dropped (line breaks kept), all else as is."""
    if not isinstance(value, str):
        return value
    if gone := set(hidden(value, lines=True)):
        value = "".join(ch for i, ch in enumerate(value) if i not in gone)
    if "<" in value or ">" in value:
        return _TAG_BRACKETS.sub(lambda m: "＜" if m[0] == "<" else "＞", value)
    return value


def _joins_emoji(text: str, i: int) -> bool:
    """A zero-width joiner between two emoji (an emoji may end in its presentation selector)."""
    if not 0 < i < len(text) - 1:
        return False
    before, after = text[i - 1], text[i + 1]
    symbol = before == _EMOJI_PRESENTATION or unicodedata.category(before) in ("So", "Sk")
    return symbol and unicodedata.category(after) == "So"
