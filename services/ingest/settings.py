"""Settings of the ingest service (environment prefix `VIGIE_INGEST_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from vigie.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_INGEST_", extra="ignore", frozen=True)
