"""Segment boundaries depend on the frames alone (issue 7)."""

from __future__ import annotations

import pytest

from services.recorder.core import Segmenter, ns_of, object_key, utc
from tests.recorder.frames import FRAME_NS, video_frames

pytestmark = pytest.mark.unit
T0 = 1_790_000_000 * 10**9


def _cut(frames, segment_s: float = 2.0):  # type: ignore[no-untyped-def]
    seg: Segmenter[int] = Segmenter(segment_s=segment_s, gap_s=2.0)
    closed, dropped = [], []
    for i, f in enumerate(frames):
        done, kept = seg.feed(f, i)
        closed += done
        if not kept:
            dropped.append(i)
    last = seg.flush()
    return closed + ([last] if last else []), dropped


def test_cut_at_keyframes_after_the_length_contiguously_and_deterministically() -> None:
    frames = video_frames("c", 130, start_ns=T0)
    segments, dropped = _cut(frames)
    assert dropped == []
    assert [len(s.frames) for s in segments] == [50, 50, 30]
    assert all(s.first.keyframe for s in segments)
    for a, b in zip(segments, segments[1:]):
        assert a.end_ns == b.start_ns, "no overlap, no gap while the camera is online"
    again, _ = _cut(frames)
    assert [(s.start_ns, s.end_ns) for s in again] == [(s.start_ns, s.end_ns) for s in segments]


def test_a_capture_gap_closes_the_segment() -> None:
    frames = video_frames("c", 100, start_ns=T0, gap_after=60, gap_ns=30 * 10**9)
    segments, _ = _cut(frames)
    ends = [(s.start_ns, s.end_ns) for s in segments]
    gap = [b[0] - a[1] for a, b in zip(ends, ends[1:])]
    assert max(gap) == pytest.approx(30 * 10**9, abs=2 * FRAME_NS)
    assert sum(len(s.frames) for s in segments) == 100


def test_mask_version_change_starts_a_new_segment_and_frames_before_a_keyframe_are_dropped() -> None:
    a = video_frames("c", 30, start_ns=T0, mask_version=1)
    b = video_frames("c", 30, start_ns=T0 + 30 * FRAME_NS, mask_version=2, first_seq=30)
    segments, dropped = _cut(a[5:] + b)  # starts mid-GOP
    assert dropped == list(range(20))  # frames 5..24 precede the first keyframe
    assert [s.first.mask_version for s in segments] == [1, 2]
    duplicate, _ = _cut(a + a[-3:])
    assert sum(len(s.frames) for s in duplicate) == 30, "a redelivered frame is stored once"


def test_object_key_is_utc_and_deterministic() -> None:
    key = object_key("palaiseau", "gare", 1_795_474_861_123_000_000)
    assert key == "palaiseau/gare/2026/11/23/23/20261123T230101.123Z.mp4"


def test_frames_received_in_a_burst_still_mux() -> None:
    """Ingest stamps reception time: a burst gives capture times microseconds apart."""
    from services.recorder.core import mux_fmp4

    frames = video_frames("c", 20, start_ns=T0)
    burst = [f.model_copy(update={"capture_time_ns": T0 + i * 1000}) for i, f in enumerate(frames)]
    segments, _ = _cut(burst)
    muxed = mux_fmp4(segments[0])
    import io

    import av
    with av.open(io.BytesIO(muxed.data)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 20


def test_frames_before_the_last_stored_segment_end_are_never_stored_twice() -> None:
    frames = video_frames("c", 100, start_ns=T0)
    seg = Segmenter[int](segment_s=2.0)
    first = [c for i, f in enumerate(frames[:51]) for c in seg.feed(f, i)[0]]
    assert len(first) == 1
    seg.stored(first[0])
    # Acknowledgements lost (a NATS restart, say): the same frames come again, then new ones.
    fresh = Segmenter[int](segment_s=2.0, floor_ns=seg.floor_ns)
    kept = [fresh.feed(f, i)[1] for i, f in enumerate(frames)]
    assert kept == [False] * 50 + [True] * 50


@pytest.mark.parametrize("sub_microsecond", [0, 1, 499, 500, 501, 999])
def test_the_stored_end_read_back_never_passes_the_next_segments_keyframe(
    sub_microsecond: int,
) -> None:
    """Found by `kill -9` of the recorder under `vigie run`: the end time was rounded (float) up
    past the next segment's first keyframe; read back after the restart, it made that keyframe
    "already stored" and its whole GOP was lost."""
    keyframe_ns = 1_764_438_887_268_751_000 + sub_microsecond
    for ns in (keyframe_ns, 1_764_438_887_999_999_600 + sub_microsecond):
        stored_end = utc(ns)  # what the segment row keeps (microseconds)
        assert ns_of(stored_end) <= ns < ns_of(stored_end) + 1000
        fresh = Segmenter[int](segment_s=2.0, floor_ns=ns_of(stored_end))
        keyframe = video_frames("c", 1, start_ns=ns)[0]
        assert keyframe.keyframe and fresh.feed(keyframe, 0)[1], "the keyframe is kept"


def test_a_keyframe_just_after_the_last_stored_frame_is_stored_even_inside_its_interval() -> None:
    """Found in CI (tests/e2e/test_replicas.py): a segment closed at a hole in VIDEO ends one
    estimated frame interval after its last frame; the next masking owner's keyframe — the
    re-encoded picture that was lost — fell inside that interval and was dropped as "already
    stored". Storage holds up to the last frame, no further."""
    frames = video_frames("c", 20, start_ns=T0)
    seg = Segmenter[int](segment_s=60.0)
    for i, f in enumerate(frames[:10]):
        seg.feed(f, i)
    closed = seg.flush()  # the hole: the segment ends, estimated one interval after frame 9
    assert closed is not None and closed.end_ns > frames[9].capture_time_ns
    seg.stored(closed)
    retaken = frames[10].model_copy(update={
        "keyframe": True, "capture_time_ns": frames[9].capture_time_ns + FRAME_NS // 2})
    assert retaken.capture_time_ns < closed.end_ns
    assert seg.feed(retaken, 10)[1], "a picture storage never got is stored"
    assert not seg.feed(frames[9], 9)[1], "what storage holds is not stored twice"
