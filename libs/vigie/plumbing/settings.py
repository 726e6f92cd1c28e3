"""Typed settings: one common base (prefix ``VIGIE_``) and one class per service.

Shared connection settings are written once (``VIGIE_NATS_URL``…) so that Compose can hold them in a
single env file; what belongs to one service carries its own prefix (``VIGIE_INGEST_…``).
Nothing here reads the environment at import time: ``load_settings`` is called from ``main()``.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Secrets the embedded default generates are random; these are the well-known ones that must never
# reach production (docker-compose examples, MinIO's defaults).
_KNOWN_DEFAULT_SECRETS = frozenset({"", "minioadmin", "changeme", "password", "postgres", "vigie",
                                    "secret", "admin", "root"})
# The placeholders the examples ship (deploy/k8s/secrets.example.yaml's CHANGE-ME, <…>): a
# deployment copied without replacing one must not start (issue 34).
_PLACEHOLDER_WORDS = ("changeme", "replaceme", "placeholder", "example", "xxxx")


def is_placeholder_secret(value: str) -> bool:
    """A well-known default or an example's placeholder, whatever its case and punctuation."""
    letters = re.sub(r"[^a-z0-9]", "", value.lower())
    return (letters in _KNOWN_DEFAULT_SECRETS or value.strip().startswith("<")
            or any(word in letters for word in _PLACEHOLDER_WORDS))


class SettingsError(SystemExit):
    """A missing or malformed setting: the message names the environment variable."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CommonSettings(BaseSettings):
    """Connection settings every service shares."""

    model_config = SettingsConfigDict(env_prefix="VIGIE_", extra="ignore", frozen=True)

    local_mode: bool = Field(
        default=False,
        description="Embedded default (`vigie run`): allows generated local secrets and plain HTTP.",
    )
    nats_url: str = Field(description="NATS server URL, e.g. nats://nats:4222")
    nats_user: str | None = Field(default=None, description="NATS user of this service")
    nats_password: SecretStr | None = Field(default=None, description="NATS password")
    nats_tls_ca: Path | None = Field(
        default=None, description="The deployment CA (PEM) that signed the NATS server's "
        "certificate (`vigie certs`); with it the connection is TLS, verified")
    nats_tls_cert: Path | None = Field(
        default=None, description="This service's client certificate (PEM), which the NATS "
        "server requires when it verifies clients (production)")
    nats_tls_key: Path | None = Field(default=None, description="Its private key (PEM)")
    bus_root: str = Field(
        default="vigie",
        pattern=r"^[a-z][a-z0-9_]*$",
        description="First token of every subject; tests isolate themselves with their own root",
    )
    postgres_dsn: SecretStr = Field(description="PostgreSQL DSN (postgresql://user:pw@host/db)")
    postgres_password: SecretStr | None = Field(
        default=None, description="The DSN's password given apart (VIGIE_POSTGRES_PASSWORD_FILE, "
        "a mounted secret): the DSN then names none, and may sit in plain configuration")
    postgres_schema: str = Field(
        default="public", pattern=r"^[a-z_][a-z0-9_]*$", description="Schema holding Vigie's tables"
    )
    s3_endpoint: str = Field(description="S3 endpoint host:port (MinIO in production)")
    s3_access_key: str = Field(min_length=3, description="S3 access key")
    s3_secret_key: SecretStr = Field(description="S3 secret key")
    s3_secure: bool = Field(default=False, description="Use HTTPS towards the S3 endpoint "
                            "(required in production)")
    s3_tls_ca: Path | None = Field(default=None, description="The CA (PEM) the S3 endpoint's "
                                   "certificate is verified with (the deployment's); default: "
                                   "the system's")
    s3_region: str = Field(default="us-east-1", description="S3 region (MinIO ignores it)")
    bucket_prefix: str = Field(
        default="", pattern=r"^[a-z0-9-]*$", description="Prefix of every bucket name (tests)"
    )
    register_key: SecretStr | None = Field(
        default=None, description="Legacy (before issue 25): the HMAC key of the register's old "
        "checkpoints, to check them with `vigie audit verify`; signs nothing any more")
    register_signing_key: SecretStr | None = Field(
        default=None, description="Ed25519 private key (PEM) with which the retention service "
        "signs the register's checkpoints (and `vigie audit purge` its purge checkpoint); no other "
        "service holds it (openssl genpkey -algorithm ed25519)")
    export_key: SecretStr | None = Field(
        default=None, description="Ed25519 private key (PEM) signing requisition exports; "
        "`vigie export create` needs it (openssl genpkey -algorithm ed25519)")
    recording_key: SecretStr | None = Field(
        default=None, description="Ed25519 private key (PEM) with which the recorder signs each "
        "camera's chain of segments as it stores them (provenance carried in exports)")
    totp_key: SecretStr | None = Field(
        default=None, description="64 hex digits (openssl rand -hex 32) sealing the accounts' "
        "TOTP secrets at rest: the gateway's alone (and the CLI in its container); production's "
        "gateway refuses to start without it")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info")
    log_format: Literal["json", "console"] = Field(
        default="json", description="json in production, console for a terminal"
    )
    connect_timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="How long start-up waits for NATS/Postgres/S3"
    )
    clock_max_offset_s: float = Field(
        default=1.0, gt=0, le=60,
        description="R36: the largest offset tolerated between this service's clock and the "
        "database's before a clock.drift event (capture times and the register's instants rest "
        "on the clocks)")
    clock_check_s: float = Field(default=60.0, gt=0, description="How often the clock is checked")
    shutdown_grace_s: float = Field(
        default=10.0, gt=0, le=120, description="How long in-flight work may take after SIGTERM"
    )
    replica: str = Field(
        default="", max_length=120, pattern=r"^[A-Za-z0-9._@:/-]*$",
        description="This replica's name in `vigie status` and the ownership of cameras (a pod's "
        "name); empty: <service>@<host>:<pid>")

    @field_validator("register_key", "register_signing_key", "export_key", "recording_key",
                     "totp_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """Compose passes an unset optional key as an empty string: that is no key."""
        return None if value == "" else value

    @model_validator(mode="before")
    @classmethod
    def _password_into_dsn(cls, data: object) -> object:
        if not isinstance(data, dict) or not data.get("postgres_password") or \
                not data.get("postgres_dsn"):
            return data
        dsn, password = (_plain(data["postgres_dsn"]), _plain(data["postgres_password"]))
        return {**data, "postgres_dsn": dsn_with_password(dsn, password)}

    @model_validator(mode="after")
    def _tls_files(self) -> CommonSettings:
        if (self.nats_tls_cert is None) != (self.nats_tls_key is None):
            raise ValueError("a NATS client certificate needs both VIGIE_NATS_TLS_CERT and "
                             "VIGIE_NATS_TLS_KEY")
        if self.nats_tls_cert is not None and self.nats_tls_ca is None:
            raise ValueError("VIGIE_NATS_TLS_CERT needs VIGIE_NATS_TLS_CA (the CA to verify the "
                             "server with)")
        if not self.local_mode and self.nats_tls_cert is None:
            # R37, R38: in production nothing crosses the network in clear, and the server
            # verifies who connects (docs/security.md).
            raise ValueError("production refuses a plain connection to NATS: set "
                             "VIGIE_NATS_TLS_CA, VIGIE_NATS_TLS_CERT and VIGIE_NATS_TLS_KEY "
                             "(`vigie certs` makes them), or VIGIE_LOCAL_MODE=true on one machine")
        if not self.local_mode and not self.s3_secure:
            raise ValueError("production refuses a plain connection to the object store: set "
                             "VIGIE_S3_SECURE=true (and VIGIE_S3_TLS_CA for the deployment's CA)")
        if not self.local_mode and not self.postgres_server_verified:
            raise ValueError("production refuses an unverified connection to PostgreSQL: end "
                             "VIGIE_POSTGRES_DSN with ?sslmode=verify-full&sslrootcert=<the "
                             "deployment's ca.pem>")
        return self

    @property
    def postgres_sslmode(self) -> str | None:
        """The DSN's `sslmode`, if it names one."""
        found = parse_qs(urlsplit(self.postgres_dsn.get_secret_value()).query).get("sslmode")
        return found[0] if found else None

    @property
    def postgres_server_verified(self) -> bool:
        """TLS to PostgreSQL with the server's certificate checked (R37)."""
        return self.postgres_sslmode in ("verify-full", "verify-ca")

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> CommonSettings:
        if self.totp_key is not None:
            # A clear error now, not at the first login (security.accounts.TotpKey opens it).
            if not re.fullmatch(r"[0-9a-fA-F]{64}", self.totp_key.get_secret_value().strip()):
                raise ValueError("VIGIE_TOTP_KEY is 64 hex digits (openssl rand -hex 32)")
        if self.local_mode:
            return self
        secrets = {
            "VIGIE_S3_SECRET_KEY": self.s3_secret_key.get_secret_value(),
            "VIGIE_NATS_PASSWORD": self.nats_password.get_secret_value()
            if self.nats_password
            else None,
            # The database role's password, inside the DSN (never printed).
            "VIGIE_POSTGRES_DSN's password": urlsplit(
                self.postgres_dsn.get_secret_value()).password,
            "VIGIE_TOTP_KEY": self.totp_key.get_secret_value() if self.totp_key else None,
        }
        for name, value in secrets.items():
            if value is not None and is_placeholder_secret(value):
                raise ValueError(f"{name} is a well-known default or a placeholder secret; set "
                                 "a real one (openssl rand -hex 24)")
        return self


class ServiceSettings(BaseSettings):
    """What every service has of its own: where its HTTP endpoints listen."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    http_host: str = Field(default="127.0.0.1", description="Address of /healthz, /readyz, /metrics")
    http_port: int = Field(default=8080, ge=0, le=65535, description="Port of the HTTP endpoints")


def _plain(value: object) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def dsn_with_password(dsn: str, password: str) -> str:
    """The DSN with the password given apart written in (URL-quoted); a DSN that already names
    one is refused (which of the two holds is not for Vigie to guess)."""
    parts = urlsplit(dsn)
    if parts.password is not None:
        raise ValueError("VIGIE_POSTGRES_DSN already names a password: give it there or in "
                         "VIGIE_POSTGRES_PASSWORD, not both")
    if "@" not in parts.netloc or not parts.username:
        raise ValueError("VIGIE_POSTGRES_PASSWORD needs a DSN that names its user "
                         "(postgresql://user@host/db)")
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


S = TypeVar("S", bound=BaseSettings)
SECRET_FILE_SUFFIX = "_FILE"


def secrets_from_files(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Any ``VIGIE_<NAME>_FILE=<path>`` sets ``VIGIE_<NAME>`` to that file's content (without its
    final line break): the convention of the official images (``POSTGRES_PASSWORD_FILE``) and how
    Compose secrets and Kubernetes Secret volumes hand a container its secrets — as files, not in
    the environment that `inspect`, the pod spec and crash reports show (issue 35). Given both
    ways with different values, or a file that cannot be read, it stops with a message naming
    the variable and the path, never the content. Returns the names set."""
    env = os.environ if environ is None else environ
    loaded = []
    for name, path in sorted(env.items()):
        if not (name.startswith("VIGIE_") and name.endswith(SECRET_FILE_SUFFIX)):
            continue
        target = name.removesuffix(SECRET_FILE_SUFFIX)
        try:
            value = Path(path).read_text().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"setting {name}: cannot read {path} "
                                f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
        if env.get(target, value) != value:
            raise SettingsError(f"setting {target} is given twice, in the environment and in "
                                f"{name}: keep one")
        env[target] = value
        loaded.append(target)
    return loaded


def load_settings(cls: type[S]) -> S:
    """Build settings from the environment (and its secret files), or stop with a message naming
    each bad variable."""
    secrets_from_files()
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            env_name = f"{prefix}{field}".upper() if field else cls.__name__
            problem = "is missing" if error["type"] == "missing" else error["msg"]
            lines.append(f"setting {env_name} {problem}")
        raise SettingsError("; ".join(lines)) from None
