"""Which tile views are already in the register (R12: the first tile of a camera per session):
remembered while a session may live, then forgotten, so memory follows the open sessions."""

from __future__ import annotations

import pytest

from services.viewer_gateway.tiles import SeenOnce

pytestmark = pytest.mark.unit


def test_first_view_per_session_and_camera_then_forgotten_after_a_session_lifetime() -> None:
    now = [0.0]
    seen = SeenOnce(100.0, clock=lambda: now[0])
    assert seen.first("s1", "palaiseau/gare") is True
    assert seen.first("s1", "palaiseau/gare") is False
    assert seen.first("s1", "palaiseau/mairie") is True
    assert seen.first("s2", "palaiseau/gare") is True
    now[0] = 60.0
    assert seen.first("s1", "palaiseau/gare") is False  # the session may still be open
    assert len(seen) == 3
    now[0] = 130.0  # s1's and s2's views of t=0 are older than any session can be
    assert seen.first("s3", "palaiseau/gare") is True
    assert len(seen) == 1
    for i in range(1000):  # a day of sessions comes and goes: the set does not keep them all
        now[0] += 10
        seen.first(f"s{i}", "palaiseau/gare")
    assert len(seen) <= 100 / 10 + 100 / 4 / 10 + 1
