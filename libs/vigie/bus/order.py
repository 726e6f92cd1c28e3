"""Which frames of a camera a consumer takes: in capture order, from the newest owner only.

Two things put a frame out of place on RAW or VIDEO: a stale owner (frozen past its lease, woken up)
publishing behind its successor, and a redelivery (a producer killed before it acknowledged what it
had consumed: its successor gets those messages again, seconds later, behind newer ones). Fed to a
decoder, an encoder or a muxer, such a frame breaks every frame that references it; a consumer drops
it instead (DESIGN.md invariants 1–2, issue 19).
"""

from __future__ import annotations

from dataclasses import dataclass


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
