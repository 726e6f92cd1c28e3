"""NATS is watched (issue 36): `vigie nats-exporter`, run as Compose and Kubernetes run it beside
a real nats-server, turns its monitoring port into the metrics the alerts read — a stream's bytes,
a consumer's backlog as JetStream counts it, the server's health — and says when the server no
longer answers rather than going silent."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import nats
import pytest
from nats.js.api import ConsumerConfig, StreamConfig
from vigie.local import servers

from tests.deploy.monitoring import alert_rules
from tests.harness import PROBE, PROBE_USER, REPO, eventually

pytestmark = pytest.mark.integration


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text: str = answer.read().decode()
    return text


def _value(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_the_exporter_shows_streams_backlogs_and_a_server_that_stopped_answering(
        tmp_path: Path) -> None:
    server = servers.start_nats(tmp_path / "nats", extra_users=PROBE)
    exporter_port = servers.free_port()
    exporter = subprocess.Popen(
        [sys.executable, "-m", "vigie.cli.main", "nats-exporter",
         "--monitor", f"http://127.0.0.1:{server.monitor_port}",
         "--listen", f"127.0.0.1:{exporter_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    nc = await nats.connect(server.url, user=PROBE_USER, password=server.passwords[PROBE_USER])
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="WATCHED", subjects=["watched.>"],
                                         max_bytes=10 * 2**20))
        await js.add_consumer("WATCHED", ConsumerConfig(durable_name="slow_reader",
                                                        ack_policy="explicit"))
        for k in range(7):
            await js.publish("watched.x", b"x" * 1000, headers={"Nats-Msg-Id": str(k)})

        def scraped() -> str:
            try:
                text = _scrape(exporter_port)
            except OSError:
                return ""
            return text if _value(text, "vigie_nats_consumer_pending",
                                  consumer="slow_reader") == 7 else ""

        text = await eventually(scraped, timeout_s=20, message="no backlog in the exporter")
        assert _value(text, "vigie_nats_up") == 1
        assert _value(text, "vigie_nats_healthy") == 1
        assert _value(text, "vigie_nats_stream_messages", stream="WATCHED") == 7
        assert (_value(text, "vigie_nats_stream_bytes", stream="WATCHED") or 0) > 7000
        assert _value(text, "vigie_nats_stream_max_bytes", stream="WATCHED") == 10 * 2**20
        assert (_value(text, "vigie_nats_jetstream_max_storage_bytes") or 0) > 0
        # Every NATS series an alert reads is one the exporter makes.
        used = {n for rule in alert_rules()
                for n in re.findall(r"\bvigie_nats_[a-z0-9_]+", rule["expr"])}
        assert {"vigie_nats_up", "vigie_nats_healthy", "vigie_nats_stream_bytes"} <= used
        exported = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
        exported |= {f"{n}_total" for n in exported}
        assert used <= exported, f"alerts on series the exporter does not make: {used - exported}"

        await nc.close()
        server.process.stop()
        # The server is gone: the exporter still answers, and says so.
        text = _scrape(exporter_port)
        assert _value(text, "vigie_nats_up") == 0
        assert _value(text, "vigie_nats_healthy") is None
    finally:
        if not nc.is_closed:
            await nc.close()
        server.process.stop()
        exporter.terminate()
        output = exporter.communicate(timeout=10)[0].decode()
    assert exporter.returncode == 0, output  # SIGTERM: a clean stop


def test_the_exporter_refuses_a_listen_address_or_url_it_cannot_use() -> None:
    for argv in (["--listen", "localhost:http"], ["--listen", "0.0.0.0:99999"],
                 ["--monitor", "127.0.0.1:8222"]):
        done = subprocess.run([sys.executable, "-m", "vigie.cli.main", "nats-exporter", *argv],
                              capture_output=True, text=True, timeout=30, cwd=REPO)
        assert done.returncode == 2, argv
        assert "vigie nats-exporter:" in done.stderr and "Traceback" not in done.stderr
