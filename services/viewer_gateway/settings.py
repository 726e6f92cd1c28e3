"""Settings of the viewer-gateway service (environment prefix `VIGIE_VIEWER_GATEWAY_`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict
from vigie.plumbing.settings import ServiceSettings


class ViewerGatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_VIEWER_GATEWAY_", extra="ignore",
                                      frozen=True)

    ops_host: str = Field(default="127.0.0.1", description="Address of the operations port")
    offences_file: str | None = Field(
        default=None, description="The offence list, if not the bundled one (give the "
        "verbalisation service the same file: VIGIE_VERBALISATION_OFFENCES_FILE)")
    ops_port: int | None = Field(
        default=None, ge=0, le=65535, description="Operations port (/healthz, /readyz, "
        "/metrics) apart from the public one; when set, /metrics leaves the public port")
    api_docs: bool | None = Field(
        default=None, description="Serve /docs and /openapi.json; default: only in the embedded "
        "default (local mode), never on a production public port unless asked")
    tls_certificate: Path | None = Field(
        default=None, description="PEM certificate: with the key, HTTPS and Secure cookies")
    tls_key: Path | None = Field(default=None, description="PEM private key of the certificate")
    trusted_proxies: str = Field(
        default="", max_length=2000, pattern=r"^[0-9A-Fa-f:.,/ *]*$",
        description="The load balancers in front of the public port (comma-separated addresses "
        "or networks; `*` when only they can reach it): their X-Forwarded-For and "
        "X-Forwarded-Proto name the client, whose address login throttling counts. Empty (the "
        "default): those headers are ignored. Never applies to the police port, which the load "
        "balancer passes through untouched (mutual TLS)")
    police_port: int | None = Field(
        default=None, ge=0, le=65535, description="R30: a second HTTPS port requiring a client "
        "certificate of VIGIE_VIEWER_GATEWAY_POLICE_CLIENT_CA (the national police's posts); "
        "national-police accounts sign in and work through it only")
    police_client_ca: Path | None = Field(
        default=None, description="The CA (PEM) whose client certificates the police port "
        "accepts (`vigie certs post <post>`: only a post's certificate is taken)")
    police_client_crl: Path | None = Field(
        default=None, description="The CA's revocation list (PEM, `vigie certs revoke <post>`): "
        "a revoked post's certificate is refused at the handshake")
    session_ttl_s: int = Field(default=12 * 3600, ge=300, le=7 * 86400,
                               description="A session's lifetime (one shift)")
    login_max_failures: int = Field(default=5, ge=1, le=100,
                                    description="Failed logins per account in the window")
    login_max_failures_per_address: int = Field(default=20, ge=1, le=1000,
                                                description="Failed logins per address in the window")
    login_window_s: int = Field(default=900, ge=10, le=86400, description="Throttling window")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576,
                                description="Largest request body accepted (413 above)")
    purge_interval_s: float = Field(default=3600.0, gt=0, le=86400,
                                    description="How often ended sessions and old login failures "
                                    "are erased")
    handover_check_s: float = Field(default=15.0, gt=0, le=300,
                                    description="How often scheduled hand-overs are evaluated")
    register_max_age_s: float = Field(
        default=900.0, gt=0, le=86400,
        description="GET /api/register/verify fails when the latest signed checkpoint is older "
        "(the retention service signs every minute, a quiet register every five)")
    alarm_check_s: float = Field(default=2.0, gt=0, le=300,
                                 description="How often the alarm list is brought up to date")
    camera_lost_s: float = Field(default=5.0, ge=0, le=3600,
                                 description="An offline camera raises « caméra perdue » once "
                                 "its last image is this old (no alarm while it connects)")
    recorder_late_s: float = Field(default=240.0, ge=30, le=86400,
                                   description="An online camera whose last recording ended this "
                                   "long ago raises « enregistrement en retard »")
    authorisation_warning_days: int = Field(default=30, ge=0, le=365,
                                            description="Days before a prefectoral "
                                            "authorisation expires when its alarm is raised")

    @model_validator(mode="after")
    def _tls_pair(self) -> ViewerGatewaySettings:
        if (self.tls_certificate is None) != (self.tls_key is None):
            raise ValueError("TLS needs both VIGIE_VIEWER_GATEWAY_TLS_CERTIFICATE and _TLS_KEY")
        if (self.police_port is None) != (self.police_client_ca is None):
            raise ValueError("the police port needs both VIGIE_VIEWER_GATEWAY_POLICE_PORT and "
                             "_POLICE_CLIENT_CA")
        if self.police_port is not None and self.tls_certificate is None:
            raise ValueError("the police port is HTTPS: set the gateway's TLS certificate")
        if self.police_client_crl is not None and self.police_client_ca is None:
            raise ValueError("a revocation list goes with the police port's CA "
                             "(VIGIE_VIEWER_GATEWAY_POLICE_CLIENT_CA)")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_certificate is not None
