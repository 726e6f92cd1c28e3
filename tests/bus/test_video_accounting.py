"""The oracle the end-to-end checks count stored frames against (DESIGN.md invariant 2): what the
recorder must store of VIDEO — not a stale owner's frames, not a picture published twice, nothing
that cannot be decoded until the next keyframe."""

from __future__ import annotations

import pytest
from vigie.plumbing.bus.video_accounting import RECORDER_GAP_NS, video_frames_to_store

pytestmark = pytest.mark.unit

MS = 1_000_000


def test_what_the_recorder_must_store_of_video() -> None:
    frames = [
        (0 * 40 * MS, True, 1, "a", 1), (1 * 40 * MS, False, 1, "a", 2),
        (1 * 40 * MS, False, 1, "a", 2),  # the same message twice
        (2 * 40 * MS, False, 0, "z", 9),  # a stale owner (epoch 0 < 1): never
        (2 * 40 * MS, False, 2, "b", 1),  # a new owner's session, not a keyframe: undecodable
        (3 * 40 * MS, True, 2, "b", 2),  # its keyframe: decodable again
        (3 * 40 * MS, False, 2, "b", 3),  # a capture time already stored: not again
        (4 * 40 * MS, False, 2, "b", 5),  # a hole in the sequence: undecodable until…
        (4 * 40 * MS + RECORDER_GAP_NS + 1, True, 2, "b", 6),  # …a keyframe (after a gap too)
    ]
    assert video_frames_to_store(frames) == [0, 40_000, 120_000,
                                             (160 * MS + RECORDER_GAP_NS + 1) // 1000]


def test_a_picture_seen_but_not_stored_is_stored_from_its_new_owner() -> None:
    """Found in CI (tests/e2e/test_replicas.py): an owner's frame lost on the bus left what
    followed it undecodable, so not stored; the next owner re-encoded from that lost picture on,
    starting with a keyframe whose capture time is before the undecodable ones'. That keyframe
    is a picture storage never got: it must be stored, and what follows it."""
    frames = [
        (0 * 40 * MS, True, 1, "a", 1), (1 * 40 * MS, False, 1, "a", 2),
        # seq 3 (80 ms) lost: 120 and 160 ms cannot be decoded
        (3 * 40 * MS, False, 1, "a", 4), (4 * 40 * MS, False, 1, "a", 5),
        (2 * 40 * MS, True, 2, "b", 1),  # the new owner's first picture: 80 ms, a keyframe
        (5 * 40 * MS, False, 2, "b", 2), (6 * 40 * MS, False, 2, "b", 3),
    ]
    assert video_frames_to_store(frames) == [0, 40_000, 80_000, 200_000, 240_000]
