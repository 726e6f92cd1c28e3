"""Settings of the masking service (environment prefix `VIGIE_MASKING_`)."""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from vigie.plumbing.settings import ServiceSettings


class MaskingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_MASKING_", extra="ignore", frozen=True)

    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=64,
        description="Worker processes; each camera's decoder and encoder stay in one of them")
    worker_stuck_after_s: float = Field(
        default=30.0, ge=2, le=600,
        description="A worker whose camera loop has not gone round for this long (frozen, or "
        "stuck in a call that never returns) is killed and replaced")
    poll_interval_s: float = Field(
        default=1.0, gt=0, le=30, description="How often cameras and approved masks are re-read")
    masks_stale_after_s: float = Field(
        default=30.0, gt=0, le=600,
        description="Database unreachable this long: masks count as not loadable (fail closed)")
    fetch_batch: int = Field(default=25, ge=1, le=500, description="RAW messages per fetch")
    norms_after_frames: int = Field(
        default=100, ge=10, le=10_000, description="Frames observed before the R35 check")
