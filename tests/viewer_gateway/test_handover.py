"""Hand-over by schedule, exception and hand, across both daylight-saving transitions (R27)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.viewer_gateway.handover import (
    DatedException,
    HoursError,
    ManualSwitch,
    Schedule,
    WeeklyHours,
)

pytestmark = pytest.mark.unit
DAILY = WeeklyHours.parse({d: [["08:00", "20:00"]] for d in
                           ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
NIGHTS = WeeklyHours.parse({d: [["20:00", "06:00"]] for d in
                            ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_municipal_hours_are_paris_wall_clock_on_both_sides_of_the_spring_change() -> None:
    schedule = Schedule(DAILY)
    # Saturday 28 March 2026: CET (UTC+1), 08:00 Paris = 07:00 UTC.
    assert schedule.scheduled(utc(2026, 3, 28, 6, 59))[0] == "national_police"
    assert schedule.scheduled(utc(2026, 3, 28, 7, 0))[0] == "municipal_police"
    # Sunday 29 March 2026, last Sunday of March: CEST (UTC+2), 08:00 Paris = 06:00 UTC.
    assert schedule.scheduled(utc(2026, 3, 29, 5, 59))[0] == "national_police"
    assert schedule.scheduled(utc(2026, 3, 29, 6, 0))[0] == "municipal_police"
    assert schedule.next_switch(utc(2026, 3, 28, 19, 30)) == utc(2026, 3, 29, 6, 0)
    assert schedule.scheduled(utc(2026, 3, 29, 18, 0))[0] == "national_police"  # 20:00 CEST


def test_municipal_hours_on_both_sides_of_the_autumn_change() -> None:
    schedule = Schedule(DAILY)
    # Sunday 25 October 2026, last Sunday of October: back to CET, 08:00 Paris = 07:00 UTC.
    assert schedule.scheduled(utc(2026, 10, 24, 6, 0))[0] == "municipal_police"  # 08:00 CEST
    assert schedule.scheduled(utc(2026, 10, 25, 6, 30))[0] == "national_police"  # 07:30 CET
    assert schedule.next_switch(utc(2026, 10, 24, 20, 0)) == utc(2026, 10, 25, 7, 0)


def test_a_night_shift_is_an_hour_shorter_in_march_and_longer_in_october() -> None:
    schedule = Schedule(NIGHTS)

    def night_length(evening_utc: datetime) -> timedelta:
        start = schedule.next_switch(evening_utc - timedelta(hours=3))
        assert start is not None and schedule.scheduled(start)[0] == "municipal_police"
        end = schedule.next_switch(start)
        assert end is not None
        return end - start

    assert night_length(utc(2026, 3, 21, 19, 0)) == timedelta(hours=10)
    assert night_length(utc(2026, 3, 28, 19, 0)) == timedelta(hours=9)
    assert night_length(utc(2026, 10, 24, 18, 0)) == timedelta(hours=11)


def test_an_edge_inside_the_spring_gap_switches_when_the_clock_jumps() -> None:
    schedule = Schedule(WeeklyHours.parse({"sun": [["02:30", "12:00"]]}))
    # 29 March 2026 at 01:00 UTC Paris jumps from 02:00 to 03:00: past 02:30 at once.
    assert schedule.next_switch(utc(2026, 3, 29, 0, 0)) == utc(2026, 3, 29, 1, 0)


def test_exceptions_and_manual_switches_override_the_week() -> None:
    holiday = DatedException(utc(2026, 7, 14, 0), utc(2026, 7, 15, 0), "national_police")
    schedule = Schedule(DAILY, (holiday,))
    assert schedule.scheduled(utc(2026, 7, 14, 10)) == ("national_police", "exception")
    assert schedule.next_switch(utc(2026, 7, 14, 10)) == utc(2026, 7, 15, 6, 0)  # 08:00 CEST
    manual = ManualSwitch("national_police", utc(2026, 7, 16, 10), None, "renfort", "sup")
    state = Schedule(DAILY).state(utc(2026, 7, 16, 12), manual)
    assert (state.holder, state.by) == ("national_police", "manual")
    assert state.until == utc(2026, 7, 16, 18, 0)  # the next scheduled switch (20:00 CEST)
    after = Schedule(DAILY).state(utc(2026, 7, 16, 18, 30), manual)
    assert (after.holder, after.by) == ("national_police", "schedule")
    bounded = ManualSwitch("national_police", utc(2026, 7, 16, 10), utc(2026, 7, 16, 11), "x", "s")
    assert Schedule(DAILY).state(utc(2026, 7, 16, 11, 30), bounded).holder == "municipal_police"


@pytest.mark.parametrize("document", [
    {"lundi": [["08:00", "20:00"]]}, {"mon": [["8h", "20:00"]]}, {"mon": [["08:00", "08:00"]]},
    {"mon": ["08:00-20:00"]}, {"mon": "08:00"},
])
def test_bad_hours_are_refused_with_a_reason(document: dict[str, object]) -> None:
    with pytest.raises(HoursError):
        WeeklyHours.parse(document)
