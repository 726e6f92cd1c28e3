"""Settings of the viewer-gateway service (environment prefix `VIGIE_VIEWER_GATEWAY_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict
from vigie.settings import ServiceSettings


class ViewerGatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_VIEWER_GATEWAY_", extra="ignore", frozen=True)
