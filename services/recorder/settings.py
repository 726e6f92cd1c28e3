"""Settings of the recorder service (environment prefix `VIGIE_RECORDER_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from vigie.plumbing.settings import ServiceSettings


class RecorderSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_RECORDER_", extra="ignore", frozen=True)

    segment_s: float = Field(default=60.0, ge=1, le=600, description="Target segment length")
    gap_s: float = Field(
        default=2.0, gt=0, le=60,
        description="A capture-time gap longer than this closes the segment (camera offline)")
    quiet_flush_s: float = Field(
        default=30.0, gt=0, le=600,
        description="No VIDEO frame for this long (wall clock) stores the open segment. Not "
        "shorter: a stall of masking or of the bus whose frames then continue the same picture "
        "sequence would split it, and the frames up to the next keyframe, undecodable alone, "
        "would be lost (issue 19)")
    upload_timeout_s: float = Field(default=30.0, gt=0, le=600, description="One upload's limit")
    retry_max_s: float = Field(default=30.0, gt=0, le=600, description="Retry backoff cap")
    poll_interval_s: float = Field(default=5.0, gt=0, le=60, description="Camera list refresh")
    backlog_check_s: float = Field(default=10.0, gt=0, le=300,
                                   description="How often each camera's backlog is measured")
    fetch_batch: int = Field(default=100, ge=1, le=1000, description="VIDEO messages per fetch")
