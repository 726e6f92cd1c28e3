"""R36: each service checks its clock against the database's and says when it drifts past the
bound (an event on EVENTS, once per crossing, and a metric); capture times that no right clock
could give are recognised."""

from __future__ import annotations

import json
import time

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from vigie.plumbing.bus.connection import jetstream
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.clock import OLDEST_PLAUSIBLE_S, ClockWatch, implausible, offset_s

from tests.conftest import events_seen
from tests.harness import eventually


@pytest.mark.unit
def test_capture_times_ahead_of_the_clock_or_a_day_old_are_implausible_R36() -> None:
    now = time.time_ns()
    assert implausible(now, now, 5.0) is None
    assert implausible(now + 4 * 10**9, now, 5.0) is None, "within the bound"
    assert implausible(now + 6 * 10**9, now, 5.0) == "6.0 s in the future"
    assert implausible(now - 3600 * 10**9, now, 5.0) is None, "an hour-old backlog is plausible"
    assert implausible(now - (OLDEST_PLAUSIBLE_S + 7200) * 10**9, now, 5.0) == "26 h old"


def _clock_events(streams: BusNames) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    prefix = f"{streams.root}.events._system.clock."
    return [(s.removeprefix(prefix), json.loads(d)) for s, d in events_seen()
            if s.startswith(prefix)]


@pytest.mark.integration
async def test_a_clock_drifting_past_the_bound_is_told_once_and_its_return_too_R36(
    db: asyncpg.Pool, probe_nc: NATS, streams: BusNames, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert abs(await offset_s(db)) < 1.0, "this machine's clock and its database agree"
    js = jetstream(probe_nc)
    watch = ClockWatch("recorder", "recorder-1", max_offset_s=1.0)
    assert abs(await watch.check(db, js, streams) or 0) < 1.0
    real = time.time
    monkeypatch.setattr("vigie.plumbing.clock.time.time", lambda: real() + 90)  # set 90 s fast
    for _ in range(3):
        drift = await watch.check(db, js, streams)
        assert drift is not None and 89 < drift < 91
    monkeypatch.setattr("vigie.plumbing.clock.time.time", real)
    await watch.check(db, js, streams)
    await watch.check(db, js, streams)
    told = await eventually(lambda: len(_clock_events(streams)) >= 2 and _clock_events(streams),
                            timeout_s=10, message="no clock events")
    assert [name for name, _ in told] == ["drift", "synchronised"], told
    drift_event = told[0][1]
    assert (drift_event["service"], drift_event["replica"]) == ("recorder", "recorder-1")
    assert 89 < drift_event["offset_s"] < 91 and drift_event["bound_s"] == 1.0
