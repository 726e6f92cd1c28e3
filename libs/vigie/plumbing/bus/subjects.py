"""Subject and stream names (DESIGN.md "Bus").

Every name derives from a root (``vigie`` in production) so that tests can isolate themselves on one
shared nats-server with a root of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def check_token(value: str, what: str) -> str:
    """A commune or camera slug becomes a subject token: refuse what would break the subject."""
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be lowercase letters, digits, '-' or '_'")
    return value


@dataclass(frozen=True)
class BusNames:
    root: str = "vigie"

    @property
    def stream_prefix(self) -> str:
        return "" if self.root == "vigie" else f"{self.root.upper()}_"

    # Streams
    @property
    def raw_stream(self) -> str:
        return f"{self.stream_prefix}RAW"

    @property
    def video_stream(self) -> str:
        return f"{self.stream_prefix}VIDEO"

    @property
    def events_stream(self) -> str:
        return f"{self.stream_prefix}EVENTS"

    @property
    def claims_bucket(self) -> str:
        """KV bucket of per-camera work claims (stream ``KV_<bucket>``)."""
        return f"{self.stream_prefix}CLAIMS"

    # Subjects
    def raw(self, commune: str = "*", camera: str = "*") -> str:
        return f"{self.root}.raw.{commune}.{camera}"

    def raw_headers(self, commune: str = "*", camera: str = "*") -> str:
        """RAW's headers without the picture, republished by the server once a frame is stored
        (core NATS): where a camera's stream stands, for ingest's standby sessions."""
        return f"{self.root}.rawheaders.{commune}.{camera}"

    def video(self, commune: str = "*", camera: str = "*") -> str:
        return f"{self.root}.video.{commune}.{camera}"

    def events(self, commune: str = "*", kind: str = "*", name: str = "*") -> str:
        return f"{self.root}.events.{commune}.{kind}.{name}"

    def verbalisation_request(self, op: str = "*") -> str:
        """Request-reply subject of the verbalisation service (the gateway asks, it answers)."""
        return f"{self.root}.rpc.verbalisation.{op}"

    def snapshot_request(self, commune: str = "*", camera: str = "*") -> str:
        """Request-reply subject of the commissioning snapshot (answered by masking only)."""
        return f"{self.root}.rpc.masking.snapshot.{commune}.{camera}"

    @property
    def all_raw(self) -> str:
        return f"{self.root}.raw.>"

    @property
    def all_raw_headers(self) -> str:
        return f"{self.root}.rawheaders.>"

    @property
    def all_video(self) -> str:
        return f"{self.root}.video.>"

    @property
    def all_events(self) -> str:
        return f"{self.root}.events.>"


def parse_camera_subject(subject: str) -> tuple[str, str]:
    """``<root>.<raw|video>.<commune>.<camera>`` → (commune, camera)."""
    parts = subject.split(".")
    if len(parts) != 4:
        raise ValueError(f"not a frame subject: {subject!r}")
    return parts[2], parts[3]
