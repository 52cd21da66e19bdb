"""Dates and times in people's words: 明天下午, 12月1日 15点, 周六上午, 下周一, 十二点半.

Usage::

    day, hours, understood = read_when("明天下午3点", today)
    # (tomorrow, (15:00, 15:00), "12月2日 周三 15:00"): a date or None, an exact time or a
    # part of the day as (from, to), or None; and what was understood, for the reply

Chinese numerals are read as digits first (十二 → 12, 两 → 2: bot/forms/numbers.py). A date that does not exist
(2月30日) leaves nothing to read a time from, so the whole answer is not understood rather
than read as a time alone. `bot/forms/delivery.py` maps what was read onto the slots offered.
"""

from __future__ import annotations

import datetime as dt
import re

from bot.forms.numbers import arabic

WEEKDAYS = "一二三四五六日"
# Rough hours people mean by each word; a window overlapping them is a match.
PARTS_OF_DAY = {
    "早上": (6, 12),
    "上午": (6, 12),
    "中午": (11, 14),
    "下午": (12, 18),
    "傍晚": (17, 20),
    "晚上": (18, 24),
}
_FULL_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?")
# The look-arounds keep 14:00-18:00 from reading as the date 00-18.
_MONTH_DAY = re.compile(r"(?<![\d:])(\d{1,2})[-/.月](\d{1,2})(?![\d:])[日号]?")
_DAY_ONLY = re.compile(r"(\d{1,2})[日号]")
_RELATIVE = {"大后天": 3, "后天": 2, "明天": 1, "明日": 1, "今天": 0, "今日": 0}
_WEEKDAY = re.compile(r"(下下|下|这|本)?(?:周|星期|礼拜)([1-7日天])")
_CLOCK = re.compile(r"(\d{1,2})[:：](\d{2})")
_HOUR = re.compile(r"(\d{1,2})点(?:(半)|(\d{1,2})分?)?")


def day_label(day: dt.date) -> str:
    return f"{day.month}月{day.day}日 周{WEEKDAYS[day.weekday()]}"


def read_when(text: str, today: dt.date) -> tuple[dt.date | None, tuple | None, str]:
    """(date or None, (from, to) times or None, what we understood, for the message)."""
    text = arabic(text).replace("今晚", "今天晚上").replace("明晚", "明天晚上")
    day, text = _read_date(text, today)
    hours = None
    part = next((p for p in PARTS_OF_DAY if p in text), "")
    if clock := _CLOCK.search(text):
        hour, minute = int(clock[1]), int(clock[2])
    elif clock := _HOUR.search(text):
        hour, minute = int(clock[1]), 30 if clock[2] else int(clock[3] or 0)
    if clock:
        if part in ("下午", "傍晚", "晚上") and hour < 12 or part == "中午" and hour < 3:
            hour += 12  # 下午3点 is 15:00
        if hour > 23 or minute > 59:
            return None, None, ""
        at = dt.time(hour, minute)
        hours, part = (at, at), at.strftime("%H:%M")
    elif part:
        start, end = PARTS_OF_DAY[part]
        hours = (dt.time(start), dt.time(23, 59) if end == 24 else dt.time(end))
    when = " ".join(x for x in (day_label(day) if day else "", part) if x)
    return day, hours, when


def _read_date(text: str, today: dt.date) -> tuple[dt.date | None, str]:
    """The date in the text, and the rest of the text to read a time from.

    A date that does not exist (2月30日) leaves no rest, so the whole answer is
    not understood rather than read as a time alone.
    """
    if m := _FULL_DATE.search(text):
        return _cut(text, m, _date(int(m[1]), int(m[2]), int(m[3])))
    if m := _MONTH_DAY.search(text):
        candidates = [_date(today.year + k, int(m[1]), int(m[2])) for k in (-1, 0, 1)]
        return _cut(text, m, _nearest(candidates, today))
    for word, days in _RELATIVE.items():
        if word in text:
            return today + dt.timedelta(days=days), text.replace(word, " ")
    if m := _WEEKDAY.search(text):
        wanted = 6 if m[2] in "日天" else int(m[2]) - 1
        if m[1]:  # 下周一: counted from Monday of the named week, not from today
            monday = today - dt.timedelta(days=today.weekday())
            weeks = {"下下": 2, "下": 1}.get(m[1], 0)
            day = monday + dt.timedelta(weeks=weeks, days=wanted)
        else:  # 周六: the coming one, today included
            day = today + dt.timedelta(days=(wanted - today.weekday()) % 7)
        return _cut(text, m, day)
    if m := _DAY_ONLY.search(text):
        months = [(today.year, today.month + k) for k in (0, 1)]
        candidates = [_date(y + (mo - 1) // 12, (mo - 1) % 12 + 1, int(m[1])) for y, mo in months]
        return _cut(text, m, _nearest(candidates, today))
    return None, text


def _cut(text: str, match: re.Match, day: dt.date | None) -> tuple[dt.date | None, str]:
    return day, (text[: match.start()] + " " + text[match.end() :]) if day else ""


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _nearest(candidates: list[dt.date | None], today: dt.date) -> dt.date | None:
    # 12/1 typed in late November is this year; 1/2 typed on 30 December is next year.
    valid = [c for c in candidates if c]
    return min(valid, key=lambda c: abs((c - today).days)) if valid else None
