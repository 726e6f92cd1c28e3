"""Settings: a missing or malformed one stops a service with a message naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from vigie.plumbing.settings import CommonSettings, SettingsError, load_settings

pytestmark = pytest.mark.unit

BASE = {
    "VIGIE_NATS_URL": "nats://127.0.0.1:4222",
    "VIGIE_POSTGRES_DSN": "postgresql://vigie:pw@127.0.0.1/vigie?sslmode=verify-full&sslrootcert=ca.pem",
    "VIGIE_S3_ENDPOINT": "127.0.0.1:9000",
    "VIGIE_S3_ACCESS_KEY": "vigie-key",
    "VIGIE_S3_SECRET_KEY": "a-long-random-secret",
    "VIGIE_S3_SECURE": "true",
    # Production needs TLS to NATS with a client certificate (issue 25).
    "VIGIE_NATS_TLS_CA": "/run/certs/ca.pem",
    "VIGIE_NATS_TLS_CERT": "/run/certs/recorder.pem",
    "VIGIE_NATS_TLS_KEY": "/run/certs/recorder.key",
}


def test_missing_and_malformed_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("VIGIE_"):
            monkeypatch.delenv(key)
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("VIGIE_S3_ENDPOINT")
    monkeypatch.setenv("VIGIE_CONNECT_TIMEOUT_S", "soon")
    with pytest.raises(SettingsError) as err:
        load_settings(CommonSettings)
    assert "VIGIE_S3_ENDPOINT is missing" in err.value.message
    assert "VIGIE_CONNECT_TIMEOUT_S" in err.value.message


def test_default_secrets_refused_outside_local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VIGIE_S3_SECRET_KEY", "minioadmin")
    with pytest.raises(SettingsError, match="VIGIE_S3_SECRET_KEY is a well-known default"):
        load_settings(CommonSettings)
    monkeypatch.setenv("VIGIE_LOCAL_MODE", "true")
    assert load_settings(CommonSettings).local_mode


@pytest.mark.parametrize(("variable", "value"), [
    ("VIGIE_S3_SECRET_KEY", "CHANGE-ME"),
    ("VIGIE_NATS_PASSWORD", "change_me"),
    ("VIGIE_NATS_PASSWORD", "<the recorder's NATS password>"),
    ("VIGIE_POSTGRES_DSN",
     "postgresql://vigie_recorder:CHANGE-ME@postgres/vigie?sslmode=verify-full&sslrootcert=ca.pem"),
    ("VIGIE_POSTGRES_DSN",
     "postgresql://vigie:postgres@postgres/vigie?sslmode=verify-full&sslrootcert=ca.pem"),
])
def test_an_examples_placeholder_secret_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
) -> None:
    """Issue 34: deploy/k8s/secrets.example.yaml's CHANGE-ME started a production service, and
    database passwords were never checked."""
    for key, base in BASE.items():
        monkeypatch.setenv(key, base)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match="placeholder") as refused:
        load_settings(CommonSettings)
    assert "CHANGE-ME" not in refused.value.message, "the secret itself is never printed"
    monkeypatch.setenv("VIGIE_LOCAL_MODE", "true")
    assert load_settings(CommonSettings).local_mode


def test_an_empty_optional_key_is_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose passes `${VIGIE_REGISTER_KEY:-}` as an empty string: no key, not the key ""."""
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VIGIE_REGISTER_KEY", "")
    monkeypatch.setenv("VIGIE_REGISTER_SIGNING_KEY", "")
    settings = load_settings(CommonSettings)
    assert settings.register_key is None and settings.register_signing_key is None
    monkeypatch.setenv("VIGIE_REGISTER_KEY", "k" * 32)
    assert load_settings(CommonSettings).register_key is not None


def test_a_service_without_settings_exits_with_one_clear_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    result = subprocess.run([sys.executable, "-m", "vigie.cli.main", "service", "recorder"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "setting VIGIE_NATS_URL is missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_secrets_are_read_from_mounted_files_and_never_printed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """Issue 35: secrets reach the containers as files (Compose secrets, Kubernetes Secret
    volumes), not as environment variables that `inspect` and the pod spec show. Any
    VIGIE_<NAME>_FILE gives VIGIE_<NAME>; the database password may be given apart from the DSN."""
    for key in list(os.environ):
        if key.startswith("VIGIE_"):
            monkeypatch.delenv(key)
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    for set_from_files in ("VIGIE_S3_SECRET_KEY", "VIGIE_POSTGRES_PASSWORD"):
        monkeypatch.setenv(set_from_files, "")  # restored (to absent) after the test
        monkeypatch.delenv(set_from_files)
    (tmp_path / "s3").write_text("a-secret-from-a-file\n")
    (tmp_path / "pg").write_text("p@ss/w:rd")
    monkeypatch.setenv("VIGIE_S3_SECRET_KEY_FILE", str(tmp_path / "s3"))
    monkeypatch.setenv("VIGIE_POSTGRES_PASSWORD_FILE", str(tmp_path / "pg"))
    monkeypatch.setenv("VIGIE_POSTGRES_DSN", "postgresql://vigie_recorder@postgres:5432/vigie"
                       "?sslmode=verify-full&sslrootcert=/run/certs/ca.pem")
    settings = load_settings(CommonSettings)
    assert settings.s3_secret_key.get_secret_value() == "a-secret-from-a-file"
    dsn = settings.postgres_dsn.get_secret_value()
    assert dsn.startswith("postgresql://vigie_recorder:p%40ss%2Fw%3Ard@postgres:5432/vigie?")
    assert urlsplit(dsn).password and unquote(urlsplit(dsn).password or "") == "p@ss/w:rd"

    # The same value both ways is harmless (a child process inherits both); two values are not.
    monkeypatch.setenv("VIGIE_S3_SECRET_KEY", "another-secret-entirely")
    with pytest.raises(SettingsError, match="VIGIE_S3_SECRET_KEY is given twice") as twice:
        load_settings(CommonSettings)
    assert "another-secret" not in twice.value.message and "from-a-file" not in twice.value.message
    monkeypatch.delenv("VIGIE_S3_SECRET_KEY")
    monkeypatch.setenv("VIGIE_S3_SECRET_KEY_FILE", str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match=r"VIGIE_S3_SECRET_KEY_FILE: cannot read .*absent"):
        load_settings(CommonSettings)
    (tmp_path / "empty").write_text("\n")  # an empty secret file is no secret
    monkeypatch.setenv("VIGIE_S3_SECRET_KEY_FILE", str(tmp_path / "empty"))
    with pytest.raises(SettingsError, match="VIGIE_S3_SECRET_KEY is a well-known default"):
        load_settings(CommonSettings)
    monkeypatch.delenv("VIGIE_S3_SECRET_KEY")
    monkeypatch.setenv("VIGIE_S3_SECRET_KEY_FILE", str(tmp_path / "s3"))
    # A DSN that already names a password, and a placeholder in the file, are refused.
    monkeypatch.setenv("VIGIE_POSTGRES_DSN", BASE["VIGIE_POSTGRES_DSN"])
    with pytest.raises(SettingsError, match="already names a password"):
        load_settings(CommonSettings)
    monkeypatch.setenv("VIGIE_POSTGRES_DSN", "postgresql://vigie@postgres/vigie?sslmode=verify-"
                       "full&sslrootcert=ca.pem")
    (tmp_path / "pg").write_text("CHANGE-ME\n")
    monkeypatch.delenv("VIGIE_POSTGRES_PASSWORD")  # set by the first load, from the file
    with pytest.raises(SettingsError, match="placeholder"):
        load_settings(CommonSettings)
