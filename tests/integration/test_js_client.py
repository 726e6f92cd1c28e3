"""A police system's client in another language, written from docs/integration.md alone (issue
39): Node.js with the official NATS client (`nats` 2.29.3, pinned by js/package-lock.json, installed
by `make setup` with `npm ci`), against a nats-server with the production configuration — TLS,
the certificate as the account, the subscriber's permissions (R30)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from vigie.local import servers

from tests.bus.test_tls import SUBSCRIBER, _deployment, provision_and_publish
from tests.harness import REPO

pytestmark = pytest.mark.integration
CLIENT = REPO / "tests" / "integration" / "js"


def test_a_nodejs_client_from_the_docs_reads_its_communes_events_in_order_and_nothing_else_R30(
    tmp_path: Path,
) -> None:
    node = shutil.which("node")
    assert node, "Node.js missing: `make setup` installs it"
    assert (CLIENT / "node_modules" / "nats").is_dir(), "run `make setup` (npm ci)"
    pki = tmp_path / "pki"
    tls = _deployment(pki)
    server = servers.start_nats(tmp_path / "nats", externals={SUBSCRIBER: ["palaiseau"]}, tls=tls)
    try:
        cameras = [(commune, f"c{i}") for i, commune in enumerate(
            ("palaiseau", "ballainvilliers", "palaiseau", "palaiseau"))]
        ids = asyncio.run(provision_and_publish(server, pki, cameras))
        published = [event_id for event_id, (commune, _) in zip(ids, cameras, strict=True)
                     if commune == "palaiseau"]
        done = subprocess.run(
            [node, str(CLIENT / "client.mjs")], cwd=CLIENT, capture_output=True, text=True,
            timeout=60, env={**os.environ, "NATS_URL": server.url, "SUBSCRIBER": SUBSCRIBER,
                             "CA": str(pki / "ca.pem"), "CERT": str(pki / f"{SUBSCRIBER}.pem"),
                             "KEY": str(pki / f"{SUBSCRIBER}.key"), "COUNT": "3",
                             "FORBIDDEN_SUBJECT": "vigie.events.ballainvilliers.>"})
    finally:
        server.process.stop()
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    events = [line for line in lines if "event_id" in line]
    # Its commune's events, in the stream's order; not the other commune's one between them.
    assert [e["event_id"] for e in events] == published
    assert all(e["subject"].startswith("vigie.events.palaiseau.") for e in events)
    [report] = [line["refused"] for line in lines if "refused" in line]
    assert any("permissions violation" in r.lower() and "ballainvilliers" in r for r in report), \
        report
    assert any(r.startswith("request:") for r in report), report
    assert not any("forbidden" in line for line in lines)


def test_the_asyncapi_projects_own_parser_accepts_the_contract(tmp_path: Path) -> None:
    """Issue 39: docs/asyncapi.yaml is what an integrator generates a client from. The AsyncAPI
    project's parser (`@asyncapi/parser`, pinned) finds no error in it; the document names TLS
    with a client certificate, the headers and the fields every event carries."""
    node = shutil.which("node")
    assert node, "Node.js missing: `make setup` installs it"
    document = REPO / "docs" / "asyncapi.yaml"
    done = subprocess.run([node, str(CLIENT / "validate-asyncapi.mjs"), str(document)],
                          cwd=CLIENT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    diagnostics = [json.loads(line) for line in done.stdout.splitlines()]
    assert not [d for d in diagnostics if d["severity"] == 0]
    # And the parser does find errors: a channel without its message is refused.
    broken = yaml.safe_load(document.read_text())
    del broken["components"]["messages"]["CameraWentOffline"]
    bad = tmp_path / "broken-asyncapi.yaml"
    bad.write_text(yaml.safe_dump(broken))
    refused = subprocess.run([node, str(CLIENT / "validate-asyncapi.mjs"), str(bad)],
                             cwd=CLIENT, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1, refused.stdout
    spec = yaml.safe_load(document.read_text())
    assert spec["servers"]["production"]["url"].startswith("tls://")
    assert spec["components"]["securitySchemes"]["subscriberCertificate"]["type"] == "X509"
    for message in spec["components"]["messages"].values():
        assert {"event_id", "time", "commune"} <= set(message["payload"]["required"])
        assert "Nats-Msg-Id" in message["headers"]["properties"]
