"""Settings of the retention service (environment prefix `VIGIE_RETENTION_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from vigie.plumbing.settings import ServiceSettings


class RetentionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_RETENTION_", extra="ignore", frozen=True)

    sweep_interval_s: float = Field(default=300.0, gt=0, le=3600, description="Time between sweeps")
    batch: int = Field(default=500, ge=1, le=10_000, description="Segments deleted per batch")
    orphan_lookback_days: int = Field(
        default=32, ge=1, le=366,
        description="How far back a camera's first sweep looks for orphan objects")
    orphan_hours_per_sweep: int = Field(
        default=800, ge=1, le=24 * 366,
        description="Hour prefixes listed per camera per sweep (the first covers the lookback)")
    checkpoint_interval_s: float = Field(
        default=60.0, gt=0, le=3600,
        description="How often the register's head is signed when rows were written (R12)")
    checkpoint_heartbeat_s: float = Field(
        default=300.0, gt=0, le=3600,
        description="A quiet register is signed again this often: a fresh checkpoint says it was "
        "quiet, not cut (`vigie audit verify --max-age-s`)")
    register_keep_months: int = Field(
        default=36, ge=12, le=120,
        description="Months the register (the access journal) is kept before its whole months "
        "are purged behind a signed checkpoint (R15: configurable, three years by default)")
    register_purge_interval_s: float = Field(
        default=86400.0, ge=60, le=7 * 86400,
        description="How often the register's retention is applied")
    export_poll_s: float = Field(
        default=2.0, gt=0, le=300, description="How often queued requisition exports are looked for")
