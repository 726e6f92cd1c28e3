"""How close a camera's unrecorded video is to being lost: VIDEO discards its oldest messages by age and
by bytes (limits retention, discard old), so a camera's oldest unacknowledged frame is lost when it is
older than `max_age`, or when `max_bytes` worth of newer messages (of every camera) sit in front of it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamState:
    """What one VIDEO `stream_info` says, shared by every camera's reading."""

    last_seq: int
    messages: int
    bytes: int
    max_age_s: float
    max_bytes: int

    @property
    def mean_message_bytes(self) -> float:
        return self.bytes / self.messages if self.messages else 0.0


@dataclass(frozen=True)
class Backlog:
    pending_messages: int  # delivered but unacknowledged, plus not yet delivered
    pending_bytes: int  # estimated from the stream's mean message size
    oldest_age_s: float  # of the oldest frame the recorder holds unacknowledged
    age_fraction: float  # of max_age already spent by that frame
    bytes_fraction: float  # of max_bytes already stored in front of that frame

    @property
    def limit_fraction(self) -> float:
        return max(self.age_fraction, self.bytes_fraction)


def measure(stream: StreamState, *, pending_messages: int, oldest_seq: int | None,
            oldest_stored_at_s: float | None, now_s: float) -> Backlog:
    """`oldest_seq`/`oldest_stored_at_s`: stream sequence and JetStream timestamp of the oldest frame
    held unacknowledged (None when nothing is held: no frame is at risk)."""
    pending_bytes = int(pending_messages * stream.mean_message_bytes)
    if oldest_seq is None or oldest_stored_at_s is None:
        return Backlog(pending_messages, pending_bytes, 0.0, 0.0, 0.0)
    age = max(0.0, now_s - oldest_stored_at_s)
    in_front = max(0, stream.last_seq - oldest_seq + 1) * stream.mean_message_bytes
    return Backlog(
        pending_messages=pending_messages,
        pending_bytes=pending_bytes,
        oldest_age_s=age,
        age_fraction=age / stream.max_age_s if stream.max_age_s else 0.0,
        bytes_fraction=in_front / stream.max_bytes if stream.max_bytes > 0 else 0.0,
    )


@dataclass
class BacklogAlarm:
    """Fires once when the backlog passes `threshold` of a limit; re-arms below `rearm`
    (hysteresis, so that a backlog hovering at the threshold is not an event storm)."""

    threshold: float = 0.5
    rearm: float = 0.4
    raised: bool = False

    def update(self, fraction: float) -> bool:
        if not self.raised and fraction >= self.threshold:
            self.raised = True
            return True
        if self.raised and fraction < self.rearm:
            self.raised = False
        return False
