"""Settings of the verbalisation service (environment prefix `VIGIE_VERBALISATION_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from vigie.plumbing.settings import ServiceSettings


class VerbalisationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_VERBALISATION_", extra="ignore",
                                      frozen=True)

    capture_window_s: float = Field(
        default=20.0, gt=0, le=60,
        description="R31: a still is taken from the live image only — a capture time at most this "
        "far behind now (the live view's latency plus the agent's click); older is refused")
    future_tolerance_s: float = Field(default=2.0, ge=0, le=10,
                                      description="Clock difference tolerated (browser ahead)")
    picture_wait_s: float = Field(default=5.0, gt=0, le=30,
                                  description="How long a capture waits for VIDEO to reach it")
    keep_after_handover_days: float = Field(
        default=7.0, ge=0, le=30,
        description="R34: stills (and the hand-over file) are erased this long after hand-over")
    keep_at_most_days: float = Field(
        default=30.0, gt=0, le=30,
        description="R34: never kept more than a month from capture (arrêté of 14 April 2009)")
    erase_interval_s: float = Field(default=60.0, gt=0, le=3600,
                                    description="How often due stills are looked for")
    offences_file: str | None = Field(
        default=None, description="Another offence list (same form as the bundled offences.json)")
