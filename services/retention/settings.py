"""Settings of the retention service (environment prefix `VIGIE_RETENTION_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict
from vigie.settings import ServiceSettings


class RetentionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_RETENTION_", extra="ignore", frozen=True)
