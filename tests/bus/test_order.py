"""A consumer takes a camera's frames in capture order from its newest owner only (issue 19)."""

from __future__ import annotations

import pytest
from vigie.plumbing.bus.order import FrameOrder

pytestmark = pytest.mark.unit


def test_in_order_frames_pass_and_a_redelivery_behind_newer_ones_does_not() -> None:
    order = FrameOrder()
    assert [order.admit(3, t) for t in (10, 20, 30)] == [True, True, True]
    assert not order.admit(3, 20), "redelivered behind a newer frame"
    assert not order.admit(3, 30), "the same frame twice"
    assert order.admit(3, 40)


def test_a_stale_owner_is_dropped_and_a_new_owner_starts_its_own_sequence() -> None:
    order = FrameOrder()
    assert order.admit(3, 100)
    assert order.admit(4, 95), "a new owner on another host: its clock may be a little behind"
    assert not order.admit(3, 200), "the old owner woke up: stale, whatever its time"
    assert not order.admit(4, 90)
    assert order.admit(4, 110)


def test_frames_without_an_epoch_keep_their_order() -> None:
    order = FrameOrder()
    assert order.admit(None, 1) and order.admit(None, 2) and not order.admit(None, 2)
    assert order.admit(1, 0), "an owned producer after unowned frames"
    assert not order.admit(None, 5)
