"""How close a camera's unrecorded video is to VIDEO's limits (issue 7): pure arithmetic."""

from __future__ import annotations

import pytest

from services.recorder.backlog import BacklogAlarm, StreamState, measure

pytestmark = pytest.mark.unit
STREAM = StreamState(last_seq=1000, messages=1000, bytes=1_000_000, max_age_s=600,
                     max_bytes=2_000_000)


def test_nothing_held_is_nothing_at_risk() -> None:
    backlog = measure(STREAM, pending_messages=0, oldest_seq=None, oldest_stored_at_s=None,
                      now_s=100)
    assert backlog.limit_fraction == 0 and backlog.pending_bytes == 0


def test_age_and_bytes_in_front_of_the_oldest_held_frame() -> None:
    backlog = measure(STREAM, pending_messages=50, oldest_seq=501, oldest_stored_at_s=1000,
                      now_s=1150)
    assert backlog.pending_bytes == 50_000
    assert backlog.oldest_age_s == 150 and backlog.age_fraction == pytest.approx(0.25)
    # 500 messages (every camera's) of 1 kB are stored in front of it, of a 2 MB limit.
    assert backlog.bytes_fraction == pytest.approx(0.25)
    late = measure(STREAM, pending_messages=50, oldest_seq=1, oldest_stored_at_s=1000, now_s=1100)
    assert late.bytes_fraction == pytest.approx(0.5) and late.limit_fraction == late.bytes_fraction


def test_alarm_fires_once_then_rearms_below_the_hysteresis() -> None:
    alarm = BacklogAlarm()
    fired = [alarm.update(f) for f in (0.1, 0.49, 0.5, 0.7, 0.45, 0.55, 0.39, 0.6)]
    assert fired == [False, False, True, False, False, False, False, True]
