"""Every word the chat understands, declared once, and how typed text is read before comparing.

Usage::

    command_of(normalize(" 礼品 "))      # Command.GIFTS (also the menu's CLICK key "GIFTS")
    move_of("修改 地址")                  # (Move.EDIT, "地址")
    said(Command.MY_GIFTS)                # "我送出的": the word the help text shows
    Word.SHARE == "送"

Commands work anywhere (a form in progress is paused, not lost); moves steer the form in
progress (bot/chat/moves.py); words start things while browsing. The chat, the engine, the
config's menu check, the help text and the flow diagram in docs/flows.md all take their
words from here: a word changed here changes everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from types import SimpleNamespace


class Command(StrEnum):
    """A word that works anywhere; its value is the menu CLICK key that does the same."""

    GIFTS = "GIFTS"
    MY_GIFTS = "MY_GIFTS"
    MY_ORDERS = "MY_ORDERS"
    HELP = "HELP"
    HUMAN = "HUMAN"  # a person: WeChat's customer service, or how to reach one ([support])


# The words for each command; the first is the one the help text shows.
COMMAND_WORDS: dict[Command, tuple[str, ...]] = {
    Command.GIFTS: ("礼品", "礼物"),
    Command.MY_GIFTS: ("我送出的",),
    Command.MY_ORDERS: ("我收到的",),
    Command.HELP: ("帮助", "?"),
    Command.HUMAN: ("人工", "客服"),
}
MENU_KEYS = (Command.GIFTS, Command.MY_GIFTS, Command.MY_ORDERS)  # the menu must carry these


class Move(StrEnum):
    """A word that steers the form in progress; its value is the word typed."""

    CONFIRM = "确认"
    BACK = "返回"
    EDIT = "修改"  # 修改 <field or its number>; a number alone on the summary edits too
    CANCEL = "取消"
    RESUME = "继续"  # after a command paused the form
    MORE = "更多"  # the whole list, where a step shows a short one
    SWAP = "换"  # during a claim: take another gift instead ([shares] swap)


class Word(StrEnum):
    """Words that start something while browsing, and the answer that skips a step."""

    SHARE = "送"
    SKIP = "跳过"
    CLAIM = "领取"  # 领取 <token>
    THANKS = "谢谢"  # 谢谢 <text>: a note to the giver of your latest order
    REVOKE = "撤回"  # 撤回 <n>: withdraw share n of 我送出的
    SURPRISE = "惊喜"  # like 送, the gift kept a secret until the order
    DRAW = "抽奖"  # like 送, the units drawn among those who join


WORD_MEANS = {  # for docs/flows.md
    Word.SHARE: "after picking a gift by its number: share it (how many, a blessing, 确认)",
    Word.SKIP: "the answer to the blessing step that leaves it empty",
    Word.CLAIM: "`领取 <token>`: claim a share in chat",
    Word.THANKS: "`谢谢 <text>`: a note to the giver of your latest order",
    Word.REVOKE: "`撤回 <n>`: withdraw share n of 我送出的; its unclaimed units return to stock",
    Word.SURPRISE: "after picking a gift: share it as a surprise (as 送; the recipient sees the "
    "gift only once their order is placed)",
    Word.DRAW: "after picking a gift: share it as a draw (how many winners, a blessing, when to "
    "draw); `领取 <token>` joins one",
}

# Every word by its name, for templates: 回复「{{ w.BACK }}」 (the first word of a command);
# every word of a command: {% for word in w.ALL.HUMAN %}.
SPOKEN = SimpleNamespace(
    **{c.name: words[0] for c, words in COMMAND_WORDS.items()},
    **{m.name: m.value for m in Move},
    **{w.name: w.value for w in Word},
    ALL=SimpleNamespace(**{c.name: words for c, words in COMMAND_WORDS.items()}),
)

_SPACES = re.compile(r"\s+")
_BY_WORD = {word: command for command, words in COMMAND_WORDS.items() for word in words}
_MOVE_WITH_ARG = re.compile(rf"^({Move.EDIT})\s*(\S+)$")
_CLAIM = re.compile(rf"^{Word.CLAIM}\s*(\S+)$")


def normalize(text: str) -> str:
    """Typed text as words are compared: full-width forms folded (NFKC), spaces trimmed and
    runs of spaces made one. Answers are kept as typed; only matching uses this."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text or "")).strip()


def command_of(text: str) -> Command | None:
    return _BY_WORD.get(normalize(text))


def menu_command(key: str) -> Command | None:
    """The command a menu button's CLICK key stands for, or None for a key we do not know."""
    try:
        return Command(key)
    except ValueError:
        return None


def said(command: Command) -> str:
    return COMMAND_WORDS[command][0]


def move_of(text: str) -> tuple[Move, str] | None:
    """The move typed, with its argument (修改 地址 → EDIT, "地址"); None for an answer."""
    word = normalize(text)
    if match := _MOVE_WITH_ARG.match(word):
        return Move(match[1]), match[2]
    try:
        return Move(word), ""
    except ValueError:
        return None


def claim_token(text: str) -> str | None:
    """The token of 领取 <token>, or None."""
    match = _CLAIM.match(normalize(text))
    return match[1] if match else None


def after(word: Word, text: str) -> str | None:
    """What follows `word` at the start of the text, as typed (谢谢 <text>, 撤回 <n>); None
    when the text does not start with it."""
    typed = (text or "").strip()
    if not normalize(typed).startswith(word):
        return None
    return typed[len(word) :].strip()
