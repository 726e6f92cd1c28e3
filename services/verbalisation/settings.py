"""Settings of the verbalisation service (environment prefix `VIGIE_VERBALISATION_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict
from vigie.settings import ServiceSettings


class VerbalisationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_VERBALISATION_", extra="ignore", frozen=True)
