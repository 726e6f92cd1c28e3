"""Settings of the ingest service (environment prefix `VIGIE_INGEST_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from vigie.plumbing.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_INGEST_", extra="ignore", frozen=True)

    poll_interval_s: float = Field(
        default=2.0, gt=0, le=60, description="How often the cameras table is re-read"
    )
    offline_after_s: float = Field(
        default=5.0, gt=0, le=60, description="No frame for this long: camera.offline"
    )
    open_timeout_s: float = Field(default=5.0, gt=0, le=60, description="RTSP connect timeout")
    read_timeout_s: float = Field(default=5.0, gt=0, le=60, description="RTSP read timeout")
    backoff_initial_s: float = Field(default=0.5, gt=0, le=60, description="First reconnect delay")
    backoff_max_s: float = Field(default=30.0, gt=0, le=600, description="Reconnect delay cap")
    health_write_interval_s: float = Field(
        default=2.0, gt=0, le=60, description="How often last-frame times are written to Postgres"
    )
    queue_frames: int = Field(
        default=250, ge=10, le=10_000, description="Frames buffered per camera before shedding"
    )
    publish_window: int = Field(
        default=64, ge=0, le=4000,
        description="RAW publishes in flight per camera before waiting for the oldest "
        "acknowledgement (0: wait for each one, a round trip per frame)")
    standby: bool = Field(
        default=True,
        description="Keep a second RTSP session open on the cameras this replica would take "
        "over next, so that a replica's death loses no frame (one more session per camera, "
        "with two replicas or more)")
    standby_keep_s: float = Field(
        default=6.0, ge=1, le=30,
        description="Seconds of a standby session's access units kept in memory: they must "
        "reach back past the predecessor's last frame when the camera is taken over")
