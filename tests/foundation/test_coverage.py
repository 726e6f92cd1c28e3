"""Uncovered parts of a period (shared by holds and the playback timeline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from vigie.custody.coverage import uncovered

pytestmark = pytest.mark.unit
T = datetime(2026, 11, 24, 8, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def test_contiguous_segments_leave_only_the_edges_and_real_holes() -> None:
    found = [(s(20), s(30)), (s(10), s(20)), (s(30.5), s(40)), (s(70), s(80))]
    assert uncovered(found, s(0), s(100)) == [(s(0), s(10)), (s(40), s(70)), (s(80), s(100))]


def test_a_fully_covered_period_has_no_gap_and_nothing_found_is_one_gap() -> None:
    assert uncovered([(s(-5), s(105))], s(0), s(100)) == []
    assert uncovered([], s(0), s(100)) == [(s(0), s(100))]
