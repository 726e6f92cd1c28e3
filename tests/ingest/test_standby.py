"""Hot standby (issue 35): which replica stands by for a camera, and how a taken-over stream goes
on from the access units a standby session kept — pure logic."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest
from vigie.plumbing.bus.frames import payload_digest

from services.ingest.source import Packet, StreamInfo
from services.ingest.standby import LastRaw, continuation, standby_for

pytestmark = pytest.mark.unit

INFO = StreamInfo(codec="h264", width=320, height=240, time_base=Fraction(1, 90000),
                  extradata=None, fps=25.0)


def _kept(count: int, *, first_pts: int = 0, first_ns: int = 5_000_000_000,
          gop: int = 10) -> list[Packet]:
    """A standby session's access units: another session's pts origin and reception times."""
    return [Packet(data=b"AU%04d" % i + bytes(50), pts=first_pts + 3600 * i,
                   dts=first_pts + 3600 * i, keyframe=i % gop == 0,
                   capture_time_ns=first_ns + 40_000_000 * i) for i in range(count)]


def _last(packet_index: int, kept: list[Packet], *, seq: int = 812, pts: int = 7_200_000,
          capture_ns: int = 5_000_000_000 + 3_000_000) -> LastRaw:
    return LastRaw(session="old", seq=seq, capture_time_ns=capture_ns, pts=pts,
                   time_base=Fraction(1, 90000), digest=payload_digest(kept[packet_index].data))


def test_the_predecessors_last_frame_found_its_session_goes_on_right_after_it() -> None:
    kept = _kept(40)
    last = _last(23, kept)
    plan = continuation(kept, INFO, last, "new")
    assert plan.continued
    assert (plan.session, plan.next_seq) == ("old", 813)
    assert plan.packets == kept[24:]  # nothing lost, nothing twice
    # Timestamps and capture times shifted onto the predecessor's: one unbroken stream.
    assert plan.capture_offset_ns == last.capture_time_ns - kept[23].capture_time_ns
    pts, _ = plan.timestamps.fix(kept[24].pts, kept[24].dts)
    assert pts + plan.pts_offset == last.pts + 3600


def test_not_found_a_new_session_starts_at_the_first_kept_keyframe_after_the_last_frame() -> None:
    kept = _kept(40)
    unknown = LastRaw(session="old", seq=5, capture_time_ns=kept[12].capture_time_ns, pts=0,
                      time_base=Fraction(1, 90000), digest=payload_digest(b"another camera"))
    plan = continuation(kept, INFO, unknown, "new")
    assert not plan.continued and (plan.session, plan.next_seq) == ("new", 0)
    assert plan.packets == kept[20:] and plan.packets[0].keyframe
    # Nothing known of RAW (it was lost, or the standby just started): from the first keyframe.
    assert continuation(kept, INFO, None, "new").packets == kept
    # Another time base (the camera's stream changed): its timestamps cannot be carried on.
    other = LastRaw(**{**_last(23, kept).__dict__, "time_base": Fraction(1, 1000)})
    assert not continuation(kept, INFO, other, "new").continued


def test_standbys_spread_over_the_replicas_and_never_on_the_owner() -> None:
    live = ["ingest-a", "ingest-b", "ingest-c"]
    chosen = {cid: standby_for(cid, "ingest-a", live) for cid in range(300)}
    assert "ingest-a" not in chosen.values()
    counts = Counter(chosen.values())
    assert set(counts) == {"ingest-b", "ingest-c"} and min(counts.values()) > 100
    assert standby_for(1, "ingest-a", ["ingest-a"]) is None  # alone: nobody stands by
    # The choice is the same whatever order the replicas are listed in (every replica agrees).
    assert standby_for(7, None, live) == standby_for(7, None, list(reversed(live)))
