"""Which frames of a camera can be decoded after a hole in a producer's sequence (issue 34)."""

from __future__ import annotations

import pytest
from vigie.plumbing.bus.order import FrameChain, Gap

pytestmark = pytest.mark.unit


def test_after_a_hole_nothing_passes_until_the_next_keyframe_and_the_hole_is_said_once() -> None:
    chain = FrameChain()
    keys = {0, 5, 10}
    passed = [seq for seq in [*range(0, 3), *range(4, 12)]
              if chain.admit("s", seq, seq in keys)]
    assert passed == [0, 1, 2, 5, 6, 7, 8, 9, 10, 11]
    assert chain.take_gaps() == [Gap("s", 2, 1)] and chain.take_gaps() == []


def test_a_duplicate_never_passes_twice_and_is_no_hole() -> None:
    chain = FrameChain()
    assert chain.admit("s", 0, True) and chain.admit("s", 1, False)
    assert not chain.admit("s", 1, False) and not chain.admit("s", 0, True)
    assert chain.admit("s", 2, False) and chain.take_gaps() == []


def test_a_new_session_starts_at_its_first_keyframe() -> None:
    chain = FrameChain()
    assert not chain.admit("a", 7, False), "joined mid-GOP: its references were never seen"
    assert chain.admit("a", 8, True) and chain.admit("a", 9, False)
    assert not chain.admit("b", 0, False) and chain.admit("b", 1, True)
    assert chain.take_gaps() == []
