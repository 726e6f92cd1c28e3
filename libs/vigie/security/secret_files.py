"""The deployment's secrets as files (issue 35): one file per secret in a folder (deploy/secrets
for Compose), each mounted read-only at /run/secrets/<name> in the containers that need it, and
read through `VIGIE_<NAME>_FILE` (vigie.plumbing.settings.secrets_from_files). Never in the environment,
which `inspect` and the pod spec show to whoever may run them."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path

from vigie.plumbing.catalog import SERVICES
from vigie.security.signing import SigningKey


def _password() -> str:
    return secrets.token_hex(24)


def _signing_key() -> str:
    # One line, as the environment variable took it: base64 of the PEM.
    return base64.b64encode(SigningKey.generate().private_pem().encode()).decode()


def _file(service: str) -> str:
    return service.replace("-", "_")


def postgres_password(service: str | None) -> str:
    """The file of a service's database role password (None: the tables' owner's)."""
    return f"postgres_password_{_file(service)}" if service else "postgres_password"


def s3_keys(service: str | None) -> tuple[str, str]:
    """The files of a service's object-store identity (None: the administrator's)."""
    suffix = f"_{_file(service)}" if service else ""
    return f"s3_access_key{suffix}", f"s3_secret_key{suffix}"


def _named(name: str) -> Callable[[], str]:
    return lambda: name


# name → how a fresh one is made. The object store's access keys name identities rather than
# hide anything, but they travel with their secret keys (an external S3 gives both): one folder.
SECRETS: dict[str, Callable[[], str]] = {
    "postgres_password": _password,  # the tables' owner: PostgreSQL, init and backup
    "s3_access_key": _named("vigie-storage"),  # the object store's administrator: s3-config, init
    "s3_secret_key": _password,
    **{f"postgres_password_{_file(s)}": _password for s in SERVICES},
    "postgres_password_monitor": _password,  # the metrics exporter's role (vigie_monitor)
    **{f"s3_access_key_{_file(s)}": _named(f"vigie-{s}") for s in SERVICES},
    **{f"s3_secret_key_{_file(s)}": _password for s in SERVICES},
    "register_signing_key": _signing_key,  # the retention service
    "export_key": _signing_key,  # retention and verbalisation
    "recording_key": _signing_key,  # the recorder
    "totp_key": lambda: secrets.token_hex(32),  # the gateway
    # Another site's S3, where `vigie backup` copies each dump: its provider gives the key
    # (empty: no copy off the host).
    "backup_s3_secret_key": lambda: "",
}


def init_folder(folder: Path) -> list[str]:
    """Write every secret missing from ``folder``; never overwrite one (a database password
    changed under a running deployment locks its services out). The folder is the host's only
    guard (0700, its owner's); the files are 0444 because each container reads its own with its
    own user (PostgreSQL 999, Vigie 10001): bind mounts carry the file's mode, not its folder's.
    Returns the names written."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    made = []
    for name, make in SECRETS.items():
        path = folder / name
        if path.exists():
            continue
        partial = path.with_suffix(".part")
        partial.write_text(make() + "\n")
        partial.chmod(0o444)
        partial.rename(path)
        made.append(name)
    return made
