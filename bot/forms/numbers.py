"""Numbers as people type and say them: the one place a form or the chat reads a number.

Usage::

    small_number("2")        # 2      a list choice, a quantity, a slot, 撤回 n: at most six digits
    small_number("２")       # 2      full-width folds
    small_number("两")       # 2      Chinese numerals, through cn2an
    small_number("十二")     # 12
    small_number("一。")     # 1      a voice message's recognition ends its sentence
    small_number("①"), small_number("9" * 5000)    # None: not a number a person picks
    arabic("明天下午三点")   # "明天下午3点": numerals inside words, for dates and times

`str.isdigit` admits characters `int` refuses (①, ²) and any length (5,000 digits make `int`
raise); a list choice is neither, so the length is bounded before anything is converted.
"""

from __future__ import annotations

import functools
import re
import unicodedata

MOST = 999_999
_DIGITS = re.compile(r"[0-9]{1,6}")
# Chinese numerals, capital (壹) forms too; a run longer than a person says is no choice.
_CHINESE = "零〇一二两三四五六七八九十百千万壹贰叁肆伍陆柒捌玖拾佰仟"
_NUMERAL = re.compile(rf"[{_CHINESE}]{{1,8}}")
_IN_WORDS = re.compile(r"[零〇一二两三四五六七八九十]{1,8}")
_SPOKEN_END = "。．.！!？?，,、 "  # what a voice recognition (or a quick thumb) adds at the end


def small_number(text: str) -> int | None:
    """A number a person picks from a list or counts with: 0…999999, else None."""
    typed = unicodedata.normalize("NFKC", text or "").strip().rstrip(_SPOKEN_END)
    if _DIGITS.fullmatch(typed):
        return int(typed)
    if _NUMERAL.fullmatch(typed):
        number = chinese(typed)
        return number if number is not None and number <= MOST else None
    return None


@functools.cache
def converter():
    """cn2an's converter, imported on first use: cn2an builds its tables when imported (0.1 to
    0.2 s), which a command that reads no numeral should not pay. The server calls this at
    start-up (bot/app.py), so no message waits for it."""
    import cn2an

    return cn2an.cn2an


def chinese(numeral: str) -> int | None:
    """两 → 2, 十二 → 12, 二零二六 → 2026 (digit by digit), 壹 → 1; None when it is not one."""
    try:
        value = converter()(numeral, "normal")
    except (ValueError, KeyError, IndexError):
        return None
    return int(value) if value == int(value) else None


def arabic(text: str) -> str:
    """Every run of Chinese numerals inside the text as digits (十二点半 → 12点半)."""
    return _IN_WORDS.sub(lambda m: str(n) if (n := chinese(m[0])) is not None else m[0], text)
