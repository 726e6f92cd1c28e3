"""Settings of the recorder service (environment prefix `VIGIE_RECORDER_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict
from vigie.settings import ServiceSettings


class RecorderSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_RECORDER_", extra="ignore", frozen=True)
