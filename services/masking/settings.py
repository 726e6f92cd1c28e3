"""Settings of the masking service (environment prefix `VIGIE_MASKING_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from vigie.settings import ServiceSettings


class MaskingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_MASKING_", extra="ignore", frozen=True)
