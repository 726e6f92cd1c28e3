"""The AsyncAPI document matches the event models; every subcommand has --help; the generated
nats-server configuration is valid for nats-server itself."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from vigie.local.servers import venv_bin
from vigie.plumbing.bus.asyncapi import build_document, render_document
from vigie.plumbing.bus.events import EVENT_TYPES

from tests.harness import REPO

pytestmark = pytest.mark.unit


def test_committed_asyncapi_document_is_up_to_date() -> None:
    committed = (REPO / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    assert committed == render_document(), "run `make asyncapi` and commit docs/asyncapi.yaml"


def test_every_event_model_has_a_channel() -> None:
    document = build_document()
    for cls in EVENT_TYPES:
        channel = document["channels"][f"vigie.events.{{commune}}.{cls.kind}.{cls.name}"]
        assert channel["subscribe"]["message"]["$ref"].endswith(cls.__name__)
        payload = document["components"]["messages"][cls.__name__]["payload"]
        assert "commune" in payload["required"] and "event_id" in payload["properties"]


@pytest.mark.parametrize("args", [[], ["service"], ["init"], ["nats-config"], ["asyncapi"],
                                  ["run"], ["status"]])
def test_every_subcommand_has_help(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "vigie.cli.main", *args, "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: vigie")


def test_production_nats_config_is_valid(tmp_path) -> None:  # type: ignore[no-untyped-def]
    certs = tmp_path / "certs"  # TLS with client certificates, as deployed (issue 25)
    subprocess.run([sys.executable, "-m", "vigie.cli.main", "certs", "init", "--out", str(certs)],
                   capture_output=True, timeout=60, check=True)
    conf = subprocess.run([sys.executable, "-m", "vigie.cli.main", "nats-config",
                           "--external", "prefecture=palaiseau,ballainvilliers",
                           "--store-dir", str(tmp_path), "--tls-dir", str(certs)],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    # Issue 34: each user is its certificate's subject, with no password.
    assert '"CN=recorder,OU=service,O=Vigie"' in conf and "verify_and_map: true" in conf
    assert "password" not in conf
    path = tmp_path / "nats.conf"
    path.write_text(conf)
    check = subprocess.run([venv_bin("nats-server"), "-c", str(path), "-t"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    assert yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text())["asyncapi"] == "2.6.0"
