"""Delivery slots: the windows offered to the recipient, and reading the one they chose.

Usage::

    slots = delivery_slots(config.delivery, now)     # [Slot(2026-12-01, "09:00-12:00"), ...]
    slots[0].label                                   # "12月1日 周二 09:00-12:00"
    key = parse_slot("明天下午", config.delivery, now)  # "2026-12-01 14:00-18:00", or raises Invalid
    check_slot(key, config.delivery, later)          # raises Invalid(Code.SLOT_UNAVAILABLE) once passed
    show_slot(key, config.delivery)                  # "12月1日 周二 14:00-18:00"

A person may answer with the number shown beside a slot (1-based), the slot's
key, or words: `12月1日下午`, `12/1 15点`, `明天下午`, `周六上午`, `下周一`.
A time picks the window containing it; 上午/中午/下午/晚上 pick the first
offered window of that day overlapping it; a date alone picks the day's first
offered window; a time without a date, the first offered day with such a window.
The slot list is computed from config and the clock, never stored, so `now` is
always passed in (tests fix it).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.codes import Code
from bot.config import Delivery
from bot.forms.base import Invalid
from bot.forms.numbers import arabic, small_number
from bot.forms.when import day_label, read_when
from bot.words import normalize

SHORT_LIST_DAYS = 3  # days of slots the chat lists at first; 更多 shows them all
_KEY = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}-\d{2}:\d{2})")
_NUMBER = re.compile(r"第?(\d{1,3})个?")


@dataclass(frozen=True)
class Slot:
    date: dt.date
    window: str  # "14:00-18:00", as configured
    timezone: str = "Asia/Shanghai"

    @property
    def key(self) -> str:
        return f"{self.date.isoformat()} {self.window}"

    @property
    def start(self) -> dt.datetime:
        return self._at(self.window.split("-")[0])

    @property
    def end(self) -> dt.datetime:
        return self._at(self.window.split("-")[1])

    @property
    def label(self) -> str:
        return f"{day_label(self.date)} {self.window}"

    @classmethod
    def from_key(cls, key: str, timezone: str = "Asia/Shanghai") -> Slot:
        """Inverse of `key`; raises ValueError on anything else."""
        match = _KEY.fullmatch(key.strip())
        if not match:
            raise ValueError(f"not a slot key: {key!r}")
        return cls(dt.date.fromisoformat(match[1]), match[2], timezone)

    def _at(self, hhmm: str) -> dt.datetime:
        return dt.datetime.combine(
            self.date, dt.time.fromisoformat(hhmm), tzinfo=ZoneInfo(self.timezone)
        )


def delivery_slots(delivery: Delivery, now: dt.datetime) -> list[Slot]:
    """Every window of the next `days_ahead` days starting `lead_hours` or more after now.

    Exact for `now`, and kept until the offer can next change (a window's start, or its start
    less the lead time, or midnight where deliveries are): a claim's every message asks for
    it, and at thousands of messages a second working it out each time was a message's cost."""
    return list(_offer(delivery, now).slots)


@dataclass(frozen=True)
class _Offer:
    delivery: Delivery
    since: dt.datetime
    last: dt.datetime  # the offer holds until this moment included (a window is offered at
    # its start less the lead time, refused just after)
    midnight: dt.datetime  # and before this one, where today changes
    slots: tuple[Slot, ...]
    examples: list[str]  # filled in when first asked (`examples`)


def _offer(delivery: Delivery, now: dt.datetime) -> _Offer:
    kept = _OFFERED.get(id(delivery))
    fresh = kept is not None and kept.delivery is delivery
    if fresh and kept.since <= now <= kept.last and now < kept.midnight:
        return kept
    every = _all_slots(delivery, now)
    lead = dt.timedelta(hours=delivery.lead_hours)
    local = _local(now, delivery)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), local.tzinfo)
    changes = [moment for s in every for moment in (s.start - lead, s.start) if moment >= now]
    offered = tuple(s for s in every if _refusal(s, delivery, now) is None)
    kept = _Offer(delivery, now, min([midnight, *changes]), midnight, offered, [])
    if len(_OFFERED) > 64:
        _OFFERED.clear()
    _OFFERED[id(delivery)] = kept
    return kept


_OFFERED: dict[int, _Offer] = {}  # the config's delivery table → its offer, while it holds


def first_days(slots: list[Slot], days: int = SHORT_LIST_DAYS) -> list[Slot]:
    """The slots of the first `days` dates on offer: the chat's short list (a prefix, so the
    numbers a person reads are the same in the short and the whole list)."""
    dates = sorted({s.date for s in slots})[:days]
    return [s for s in slots if s.date in dates]


def examples(delivery: Delivery, now: dt.datetime) -> list[str]:
    """Two things a person could type for slots offered now (明天下午, 12月5日 15点):
    computed from the offer and read back, so an example is never in the past or refused
    (kept with the offer: words like 明天 only change with it)."""
    offer = _offer(delivery, now)
    if not offer.examples:
        offer.examples[:] = _examples(delivery, now, list(offer.slots)) or [""]
    return [words for words in offer.examples if words]


def _examples(delivery: Delivery, now: dt.datetime, offered: list[Slot]) -> list[str]:
    today = _local(now, delivery).date()
    candidates = []
    for slot in offered[:1] + offered[-1:] + offered[:1]:
        hour = int(slot.window[:2])
        relative = {1: "明天", 2: "后天"}.get((slot.date - today).days)
        if relative and not candidates:
            part = "上午" if hour < 12 else "下午" if hour < 18 else "晚上"
            candidates.append(f"{relative}{part}")
        else:
            candidates.append(f"{slot.date.month}月{slot.date.day}日 {hour + 1}点")
    found = []
    for words in candidates:
        try:
            chosen = parse_slot(words, delivery, now)
        except Invalid:
            continue
        if words not in found and chosen in {s.key for s in offered}:
            found.append(words)
    return found[:2]


def parse_slot(text: str, delivery: Delivery, now: dt.datetime) -> str:
    """Read a slot number, a slot key or a date/time in words; return the offered slot's key."""
    typed = normalize(text)
    if not typed:
        raise Invalid(Code.SLOT_EMPTY)
    offered = delivery_slots(delivery, now)
    number = _NUMBER.fullmatch(arabic(typed).replace(" ", ""))
    n = small_number(typed) if number is None else int(number[1])  # 三, or 一。 by voice
    if n is not None:
        if not 1 <= n <= len(offered):
            raise Invalid(Code.SLOT_OUT_OF_RANGE, text=typed, number=n, count=len(offered))
        return offered[n - 1].key
    key = _KEY.fullmatch(typed)
    if key and key[2] in delivery.slots:
        return check_slot(typed, delivery, now)
    day, hours, when = read_when(typed, _local(now, delivery).date())
    if day is None and hours is None:
        raise Invalid(Code.SLOT_UNKNOWN, text=typed)
    wanted = [s for s in _all_slots(delivery, now, day) if hours is None or _overlaps(s, hours)]
    chosen = next((s for s in wanted if s in offered), None)
    if chosen:
        return chosen.key
    if day is None:
        # Only a time of day was given, and no offered day has such a window.
        raise Invalid(Code.SLOT_UNAVAILABLE, reason="no_window", when=when, **_limits(delivery))
    reason = _day_refusal(day, delivery, now) or "no_window"
    if reason == "no_window" and wanted:
        reason = _refusal(wanted[-1], delivery, now) or "no_window"
    raise Invalid(Code.SLOT_UNAVAILABLE, reason=reason, when=when, **_limits(delivery))


def check_slot(key: str, delivery: Delivery, now: dt.datetime) -> str:
    """Re-validate a stored slot key against what is offered now."""
    try:
        slot = Slot.from_key(key, delivery.timezone)
    except ValueError:
        raise Invalid(Code.SLOT_UNKNOWN, text=key) from None
    reason = _refusal(slot, delivery, now) if slot.window in delivery.slots else "no_window"
    if reason:
        raise Invalid(Code.SLOT_UNAVAILABLE, reason=reason, when=slot.label, **_limits(delivery))
    return slot.key


def show_slot(key: str, delivery: Delivery) -> str:
    """The label a person reads: 12月1日 周二 14:00-18:00."""
    return Slot.from_key(key, delivery.timezone).label


# -- which slots exist, and why one is refused --------------------------------


def _all_slots(delivery: Delivery, now: dt.datetime, day: dt.date | None = None) -> list[Slot]:
    """Configured windows (ordered by start) for `day`, or for every day in the offer."""
    today = _local(now, delivery).date()
    days = [day] if day else [today + dt.timedelta(days=i) for i in range(delivery.days_ahead)]
    windows = sorted(delivery.slots)  # "HH:MM-HH:MM" sorts by start time
    return [Slot(d, w, delivery.timezone) for d in days for w in windows]


def _refusal(slot: Slot, delivery: Delivery, now: dt.datetime) -> str | None:
    """Why this slot is not offered, or None when it is."""
    reason = _day_refusal(slot.date, delivery, now)
    if reason:
        return reason
    if slot.start < now:
        return "past"
    if slot.start < now + dt.timedelta(hours=delivery.lead_hours):
        return "lead"
    return None


def _day_refusal(day: dt.date, delivery: Delivery, now: dt.datetime) -> str | None:
    today = _local(now, delivery).date()
    if day < today:
        return "past"
    if day >= today + dt.timedelta(days=delivery.days_ahead):
        return "too_far"
    if day.isoformat() in delivery.closed_dates:
        return "closed"
    return None


def _overlaps(slot: Slot, hours: tuple[dt.time, dt.time]) -> bool:
    start, end = (dt.time.fromisoformat(t) for t in slot.window.split("-"))
    if hours[0] == hours[1]:  # an exact time: the window must contain it
        return start <= hours[0] < end
    return start < hours[1] and hours[0] < end


def _limits(delivery: Delivery) -> dict:
    lead = delivery.lead_hours
    return {"lead_hours": int(lead) if lead == int(lead) else lead, "days": delivery.days_ahead}


def _local(now: dt.datetime, delivery: Delivery) -> dt.datetime:
    return now.astimezone(ZoneInfo(delivery.timezone))
