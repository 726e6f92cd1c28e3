"""Which frames of a camera a consumer takes: in capture order, from the newest owner only.

Two things put a frame out of place on RAW or VIDEO: a stale owner (frozen past its lease, woken up)
publishing behind its successor, and a redelivery (a producer killed before it acknowledged what it
had consumed: its successor gets those messages again, seconds later, behind newer ones). Fed to a
decoder, an encoder or a muxer, such a frame breaks every frame that references it; a consumer drops
it instead (DESIGN.md invariants 1–2, issue 19).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter

FRAMES_LOST = Counter("vigie_frames_lost_total", "Frames missing from a producer's sequence, seen "
                      "by a consumer (nothing decoded until the next keyframe)",
                      ["stage", "commune", "camera"])
GAPS = Counter("vigie_frame_gaps_total", "Holes in a producer's sequence seen by a consumer",
               ["stage", "commune", "camera"])


@dataclass
class FrameOrder:
    epoch: int = 0  # the highest owner epoch seen
    last_ns: int = -1  # the last capture time taken under it

    def admit(self, owner_epoch: int | None, capture_time_ns: int) -> bool:
        epoch = owner_epoch or 0
        if epoch < self.epoch:
            return False
        if epoch > self.epoch:
            # A new owner: its clock may differ a little from its predecessor's (another host);
            # from now on only its own frames count.
            self.epoch, self.last_ns = epoch, -1
        if capture_time_ns <= self.last_ns:
            return False
        self.last_ns = capture_time_ns
        return True


@dataclass(frozen=True)
class Gap:
    """Frames of a producer's session that never arrived (lost on the bus, or not published)."""
    session: str
    after_seq: int  # the last frame received before the hole
    missing: int  # how many sequence numbers were skipped


@dataclass
class FrameChain:
    """Which frames of a camera can be decoded: after a hole in a producer's gapless `seq`, every
    frame up to the next keyframe references a picture that never came. Decoded, stored or sent
    to a browser, those frames show block smearing the camera never filmed; evidence must carry
    a gap instead (issue 34). `admit` says whether a frame may go on; each hole is returned once
    by `take_gaps` (for a metric and an event).

    A new session (the producer restarted, or another took the camera over) starts at its first
    keyframe too: its P-frames reference pictures of a session this consumer did not see."""

    session: str | None = None
    last_seq: int = -1
    broken: bool = True  # nothing yet: wait for a keyframe
    _gaps: list[Gap] | None = None

    def admit(self, session: str, seq: int, keyframe: bool) -> bool:
        if session == self.session and seq <= self.last_seq:
            return False  # a duplicate or a frame behind: never shown twice
        if session == self.session and seq != self.last_seq + 1:
            if self._gaps is None:
                self._gaps = []
            self._gaps.append(Gap(session, self.last_seq, seq - self.last_seq - 1))
            self.broken = True
        elif session != self.session:
            self.broken = True
        self.session, self.last_seq = session, seq
        if self.broken and not keyframe:
            return False
        self.broken = False
        return True

    def need_keyframe(self) -> None:
        """A frame this consumer admitted went no further (a recorder's duplicate of what it
        stored): the frames after it reference it, so nothing more until a keyframe."""
        self.broken = True

    def take_gaps(self) -> list[Gap]:
        gaps, self._gaps = self._gaps or [], None
        return gaps
