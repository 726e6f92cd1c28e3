"""Passwords never reach a log line or an event, including exception texts (PyAV quotes the URL,
password included, in its errors)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NATS
from vigie.plumbing.bus.connection import jetstream
from vigie.plumbing.bus.events import CameraWentOffline, encode_event, publish_event
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.log import configure_logging, get_logger, redact
from vigie.plumbing.settings import CommonSettings

from tests.conftest import events_seen
from tests.harness import eventually

SECRET = "S3cretPW-9f2"


@pytest.mark.unit
@pytest.mark.parametrize("text", [
    f"rtsp://agent:{SECRET}@10.0.0.7:554/stream1",
    f"postgresql://vigie:{SECRET}@db:5432/vigie",
    f"host=db user=vigie password={SECRET} dbname=vigie",
    f"error opening 'rtsp://admin:{SECRET}@cam/x': 401",
    f"nats://recorder:{SECRET}@nats:4222",
])
def test_redact_removes_passwords(text: str) -> None:
    cleaned = redact(text)
    assert SECRET not in cleaned
    assert "***" in cleaned


@pytest.mark.unit
def test_redact_keeps_what_is_not_secret() -> None:
    assert redact("rtsp://10.0.0.7:554/stream1") == "rtsp://10.0.0.7:554/stream1"
    assert redact("camera palaiseau/gare offline") == "camera palaiseau/gare offline"


@pytest.mark.integration
async def test_failing_rtsp_url_with_credentials_appears_in_no_log_or_event(
    probe_nc: NATS, streams: BusNames
) -> None:
    url = f"rtsp://agent:{SECRET}@127.0.0.1:1/stream"
    buffer = io.StringIO()
    configure_logging(fmt="json", stream=buffer, service="test")
    log = get_logger("test")
    try:
        av.open(url, options={"rtsp_transport": "tcp"}, timeout=2)
    except av.error.FFmpegError as exc:
        assert SECRET in str(exc), "precondition: PyAV quotes the password"
        log.exception("camera_open_failed", url=url)
        log.warning("camera_open_failed", error=str(exc), detail={"url": url})
        event = CameraWentOffline(commune="palaiseau", camera="gare", reason="unreachable",
                                  detail=str(exc))
    else:
        pytest.fail("connecting to a closed port should fail")
    await publish_event(jetstream(probe_nc), streams, event)
    text = buffer.getvalue()
    assert "camera_open_failed" in text and "Traceback" in text
    assert SECRET not in text
    assert SECRET not in encode_event(event).decode()
    subject = streams.events("palaiseau", "camera", "offline")
    seen = await eventually(lambda: [d for s, d in events_seen() if s == subject], timeout_s=5,
                            message="event not seen on the bus")
    assert SECRET not in seen[0].decode() and json.loads(seen[0])["reason"] == "unreachable"


@pytest.mark.integration
def test_dsn_password_of_a_failing_service_is_not_logged(
    settings_for: Callable[..., CommonSettings],
) -> None:
    env = {**os.environ,
           "VIGIE_NATS_URL": "nats://127.0.0.1:1", "VIGIE_NATS_USER": "recorder",
           "VIGIE_NATS_PASSWORD": SECRET,
           "VIGIE_POSTGRES_DSN": f"postgresql://vigie:{SECRET}@127.0.0.1:1/vigie",
           "VIGIE_S3_ENDPOINT": "127.0.0.1:1", "VIGIE_S3_ACCESS_KEY": "vigie-key",
           "VIGIE_S3_SECRET_KEY": SECRET, "VIGIE_CONNECT_TIMEOUT_S": "2",
           "VIGIE_RECORDER_HTTP_PORT": "0", "VIGIE_LOG_LEVEL": "debug",
           "VIGIE_LOCAL_MODE": "true"}  # plain NATS (production would refuse it first)
    result = subprocess.run([sys.executable, "-m", "vigie.cli.main", "service", "recorder"],
                            env=env, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "service_dependency_unavailable" in output
    assert SECRET not in output


# Issue 17: `rtsp://u:ab'cd@h` was logged whole (the pattern stopped at quotes and '@').
_PASSWORD = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=8, max_size=40,
).filter(lambda p: p.strip() == p and "://" not in p)


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(password=_PASSWORD, user=st.from_regex(r"[a-z]{1,8}", fullmatch=True),
       frame=st.sampled_from(["{}", "error opening '{}': 401", 'detail="{}" retry',
                              "{} (Connection refused)", "open {}\nnext line user@host"]))
def test_redaction_hides_any_password_a_person_can_type(password: str, user: str,
                                                        frame: str) -> None:
    url = f"rtsp://{user}:{password}@cam.example/stream"
    text = frame.format(url)
    cleaned = redact(text)
    assert password not in cleaned
    # Nor any long piece of it (a cut in the middle would leak the rest) — unless that piece is
    # in the text anyway (hypothesis found the password "stream00" in …/stream: not a leak).
    assert not any(password[i:i + 6] in cleaned for i in range(len(password) - 5)
                   if password[i:i + 6].strip()
                   and password[i:i + 6] not in text.replace(password, ""))
    event = CameraWentOffline(commune="palaiseau", camera="gare", reason="unauthorized",
                              detail=text)
    decoded = json.loads(encode_event(event))  # still one valid JSON document
    assert password not in decoded["detail"] and decoded["camera"] == "gare"
