"""Delivery slots offered to the recipient, and the ways they may name one.

The clock is fixed: Saturday 28 November 2026, 10:00 in Shanghai. With the
default windows and 24 hours' lead, the first offered slot is Sunday afternoon.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import Delivery
from bot.forms.base import Invalid
from bot.forms.delivery import (
    Slot,
    check_slot,
    delivery_slots,
    examples,
    first_days,
    parse_slot,
    show_slot,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)  # a Saturday
DELIVERY = Delivery(closed_dates=["2026-12-03"])  # 7 days, 24 h lead, 09-12 / 14-18 / 18-21


def parse(text, delivery=DELIVERY, now=NOW):
    return parse_slot(text, delivery, now)


def refusal(text, delivery=DELIVERY, now=NOW):
    with pytest.raises(Invalid) as caught:
        parse_slot(text, delivery, now)
    return caught.value


# -- the Slot value -----------------------------------------------------------


def test_slot_key_label_and_times_are_in_the_configured_zone():
    slot = Slot(dt.date(2026, 12, 1), "14:00-18:00")
    assert slot.key == "2026-12-01 14:00-18:00"
    assert slot.label == "12月1日 周二 14:00-18:00"
    assert slot.start == dt.datetime(2026, 12, 1, 14, tzinfo=SHANGHAI)
    assert slot.end == dt.datetime(2026, 12, 1, 18, tzinfo=SHANGHAI)
    assert slot.start.utcoffset() == dt.timedelta(hours=8)


def test_slot_round_trips_through_its_key():
    slot = Slot(dt.date(2026, 12, 1), "09:00-12:00")
    assert Slot.from_key(slot.key) == slot


@pytest.mark.parametrize("key", ["", "2026-12-01", "2026-12-01 14:00", "tomorrow 14:00-18:00"])
def test_slot_from_a_malformed_key_raises_value_error(key):
    with pytest.raises(ValueError):
        Slot.from_key(key)


# -- what is offered ----------------------------------------------------------


def test_offer_skips_lead_time_closed_dates_and_ends_after_days_ahead():
    keys = [s.key for s in delivery_slots(DELIVERY, NOW)]
    assert keys[0] == "2026-11-29 14:00-18:00"  # Sunday 09:00 is under 24 hours away
    assert "2026-11-28 18:00-21:00" not in keys  # today, inside lead time
    assert not any(k.startswith("2026-12-03") for k in keys)  # closed
    assert keys[-1] == "2026-12-04 18:00-21:00"  # today + 6 is the last day offered
    assert len(keys) == 14


def test_offer_is_ordered_by_start_even_if_config_is_not():
    delivery = Delivery(slots=["18:00-21:00", "09:00-12:00"], lead_hours=0, days_ahead=1)
    windows = [s.window for s in delivery_slots(delivery, NOW)]
    assert windows == ["18:00-21:00"]  # 09:00 today has passed
    later = [s.window for s in delivery_slots(delivery, NOW - dt.timedelta(hours=3))]
    assert later == ["09:00-12:00", "18:00-21:00"]


def test_today_is_the_configured_zones_today_not_utcs():
    # 20:00 UTC on the 28th is already 04:00 on the 29th in Shanghai.
    now = dt.datetime(2026, 11, 28, 20, 0, tzinfo=dt.UTC)
    slots = delivery_slots(Delivery(lead_hours=0, days_ahead=1), now)
    assert {s.date for s in slots} == {dt.date(2026, 11, 29)}


def test_slot_starting_exactly_at_lead_time_is_offered():
    keys = [s.key for s in delivery_slots(Delivery(lead_hours=4), NOW)]
    assert keys[0] == "2026-11-28 14:00-18:00"


# -- choosing by number or key -------------------------------------------------


@pytest.mark.parametrize("text", ["1", " 1 ", "１", "第1个", "第一个"])
def test_slot_number_picks_from_the_offered_list(text):
    assert parse(text) == "2026-11-29 14:00-18:00"


def test_last_slot_number_is_accepted():
    assert parse("14") == "2026-12-04 18:00-21:00"


@pytest.mark.parametrize("text, number", [("0", 0), ("15", 15), ("99", 99)])
def test_slot_number_outside_the_list_is_out_of_range(text, number):
    error = refusal(text)
    assert error.code == "slot_out_of_range"
    assert (error.params["number"], error.params["count"]) == (number, 14)


def test_exact_offered_key_is_accepted():
    assert parse("2026-12-01 14:00-18:00") == "2026-12-01 14:00-18:00"


def test_exact_key_inside_lead_time_is_unavailable():
    error = refusal("2026-11-29 09:00-12:00")
    assert (error.code, error.params["reason"]) == ("slot_unavailable", "lead")


# -- choosing in words ---------------------------------------------------------


@pytest.mark.parametrize(
    "text, key",
    [
        ("2026-12-01 14:00", "2026-12-01 14:00-18:00"),
        ("12-01 14:00", "2026-12-01 14:00-18:00"),
        ("12月1日下午", "2026-12-01 14:00-18:00"),
        ("12月1号 上午", "2026-12-01 09:00-12:00"),
        ("12/1 15点", "2026-12-01 14:00-18:00"),
        ("十二月一日下午三点", "2026-12-01 14:00-18:00"),
        ("明天下午", "2026-11-29 14:00-18:00"),
        ("明天下午3点半", "2026-11-29 14:00-18:00"),
        ("后天上午", "2026-11-30 09:00-12:00"),
        ("大后天晚上", "2026-12-01 18:00-21:00"),
        ("明晚", "2026-11-29 18:00-21:00"),
        ("周日下午", "2026-11-29 14:00-18:00"),
        ("星期一 上午", "2026-11-30 09:00-12:00"),
        ("下周一下午", "2026-11-30 14:00-18:00"),
        ("下周二晚上8点", "2026-12-01 18:00-21:00"),
        ("礼拜五", "2026-12-04 09:00-12:00"),
        ("29号下午", "2026-11-29 14:00-18:00"),
        ("12/1 18:00", "2026-12-01 18:00-21:00"),  # a window's end belongs to the next one
    ],
)
def test_typed_date_and_time_map_onto_the_window_containing_it(text, key):
    assert parse(text) == key


def test_bare_date_picks_the_first_offered_slot_that_day():
    assert parse("12月1日") == "2026-12-01 09:00-12:00"
    assert parse("明天") == "2026-11-29 14:00-18:00"  # Sunday morning is inside lead time


def test_part_of_day_picks_the_first_offered_overlapping_window():
    delivery = Delivery(slots=["13:00-15:00", "15:00-17:00"], lead_hours=28)
    # 13:00 tomorrow is 27 hours away, so the afternoon's second window is chosen.
    assert parse("明天下午", delivery) == "2026-11-29 15:00-17:00"


def test_time_without_a_date_picks_the_first_offered_day_with_that_window():
    assert parse("上午") == "2026-11-30 09:00-12:00"
    assert parse("14:00-18:00") == "2026-11-29 14:00-18:00"


def test_month_and_day_in_january_typed_in_december_mean_next_year():
    now = dt.datetime(2026, 12, 30, 10, 0, tzinfo=SHANGHAI)
    assert parse("1月2日 下午", now=now) == "2027-01-02 14:00-18:00"


# -- refusals ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", None])
def test_blank_answer_is_refused_as_empty(text):
    assert refusal(text).code == "slot_empty"


@pytest.mark.parametrize("text", ["随便", "尽快", "2月30日 下午", "25:00", "abc"])
def test_unreadable_answer_is_unknown_and_echoed(text):
    error = refusal(text)
    assert error.code == "slot_unknown"
    assert error.params["text"] == text


@pytest.mark.parametrize(
    "text, reason",
    [
        ("11月27日", "past"),
        ("周六上午", "past"),  # today; the morning window has begun
        ("今天晚上", "lead"),
        ("明天上午", "lead"),
        ("12月3日", "closed"),
        ("3号下午", "closed"),
        ("12月10日", "too_far"),
        ("下下周一", "too_far"),
        ("12月1日 13:00", "no_window"),
        ("12点", "no_window"),
        ("凌晨3点", "no_window"),
    ],
)
def test_understood_but_not_offered_says_why(text, reason):
    error = refusal(text)
    assert error.code == "slot_unavailable"
    assert error.params["reason"] == reason
    assert error.params["lead_hours"] == 24 and error.params["days"] == 7


def test_unavailable_says_what_was_understood():
    assert refusal("12月3日下午").params["when"] == "12月3日 周四 下午"
    assert refusal("12月1日 13:00").params["when"] == "12月1日 周二 13:00"


def test_fractional_lead_hours_are_kept_for_the_message():
    error = refusal("今天晚上", Delivery(lead_hours=8.5))
    assert error.params["lead_hours"] == 8.5


def test_out_of_range_when_nothing_is_offered_reports_zero():
    closed = ["2026-11-28", "2026-11-29", "2026-11-30"]
    error = refusal("1", Delivery(closed_dates=closed, days_ahead=3))
    assert error.params["count"] == 0


# -- re-checking a stored choice -----------------------------------------------


def test_stored_slot_still_offered_checks_back_to_itself():
    assert check_slot("2026-12-01 14:00-18:00", DELIVERY, NOW) == "2026-12-01 14:00-18:00"


def test_stored_slot_becomes_unavailable_once_inside_lead_time():
    later = NOW + dt.timedelta(days=2)
    with pytest.raises(Invalid) as caught:
        check_slot("2026-12-01 09:00-12:00", DELIVERY, later)
    assert (caught.value.code, caught.value.params["reason"]) == ("slot_unavailable", "lead")


def test_stored_slot_on_a_newly_closed_day_is_unavailable():
    delivery = Delivery(closed_dates=["2026-12-01"])
    with pytest.raises(Invalid) as caught:
        check_slot("2026-12-01 14:00-18:00", delivery, NOW)
    assert caught.value.params["reason"] == "closed"


def test_stored_slot_whose_window_was_removed_is_unavailable():
    delivery = Delivery(slots=["10:00-16:00"])
    with pytest.raises(Invalid) as caught:
        check_slot("2026-12-01 14:00-18:00", delivery, NOW)
    assert caught.value.params["reason"] == "no_window"


def test_garbled_stored_slot_is_unknown():
    with pytest.raises(Invalid) as caught:
        check_slot("next tuesday", DELIVERY, NOW)
    assert caught.value.code == "slot_unknown"


def test_show_slot_gives_the_label():
    assert show_slot("2026-12-05 18:00-21:00", DELIVERY) == "12月5日 周六 18:00-21:00"


# -- what the chat offers: a short list and examples that hold -----------------


@pytest.mark.parametrize("hours", range(0, 24 * 8, 5))
@pytest.mark.parametrize(
    "delivery",
    [DELIVERY, Delivery(lead_hours=0), Delivery(days_ahead=2, slots=["18:00-21:00"])],
    ids=["closed-day", "no-lead", "evenings-only"],
)
def test_every_example_reads_back_as_a_slot_on_offer(hours, delivery):
    now = NOW + dt.timedelta(hours=hours)
    offered = {s.key for s in delivery_slots(delivery, now)}
    words = examples(delivery, now)
    assert words or not offered, "when slots are offered there is an example"
    for typed in words:
        assert parse_slot(typed, delivery, now) in offered, typed


def test_examples_name_no_date_in_the_past():
    words = examples(DELIVERY, NOW)
    assert words == ["明天下午", "12月4日 19点"]


def test_no_examples_when_nothing_is_offered():
    assert examples(Delivery(days_ahead=1), NOW) == []


def test_the_short_list_is_the_first_three_days_and_keeps_the_numbers():
    slots = delivery_slots(DELIVERY, NOW)
    short = first_days(slots)
    assert short == slots[: len(short)]
    assert sorted({s.date for s in short}) == sorted({s.date for s in slots})[:3]


# -- the offer kept between messages ------------------------------------------


@given(
    steps=st.lists(st.integers(min_value=-3 * 3600, max_value=9 * 3600), min_size=1, max_size=30),
    lead=st.sampled_from([0, 2, 24]),
)
@settings(max_examples=60, deadline=None)
def test_the_kept_offer_is_always_what_working_it_out_afresh_gives(steps, lead):
    """The clock moving by minutes or hours, forwards or back, across windows' starts, their
    lead times and midnight: what is served from the kept offer equals the offer worked out for
    that very moment, examples included."""
    from bot.forms import delivery as module

    table = Delivery(closed_dates=["2026-12-03"], lead_hours=lead)
    now = NOW
    for seconds in steps:
        now = now + dt.timedelta(seconds=seconds)
        kept, kept_examples = delivery_slots(table, now), examples(table, now)
        module._OFFERED.clear()
        assert kept == delivery_slots(table, now)
        assert kept_examples == examples(table, now)
