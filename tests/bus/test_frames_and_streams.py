"""Streams are created idempotently; a frame message round-trips with every DESIGN.md header."""

from __future__ import annotations

from fractions import Fraction

import pytest
from nats.aio.client import Client as NATS
from nats.js.api import StorageType
from vigie.plumbing.bus.connection import jetstream
from vigie.plumbing.bus.frames import Frame, FrameMessageError, publish_frame
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames, check_token, parse_camera_subject

pytestmark = pytest.mark.integration


def _frame(**overrides: object) -> Frame:
    values: dict[str, object] = dict(
        commune="palaiseau", camera="mairie-parvis", codec="h264", width=1920, height=1080,
        pts=3600, dts=1800, time_base=Fraction(1, 90000), keyframe=True,
        capture_time_ns=1_790_000_000_123_456_789, session="s1", seq=42, mask_version=7,
        parameter_sets=b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68", data=b"\x00\x00\x01\x65frame",
    )
    values.update(overrides)
    return Frame.model_validate(values)


async def test_streams_created_twice_without_error(probe_nc: NATS, bus_names: BusNames) -> None:
    js = jetstream(probe_nc)
    limits = StreamLimits(video_max_age_s=3600, video_max_bytes=2**30)
    await ensure_streams(js, bus_names, limits)
    await ensure_streams(js, bus_names, StreamLimits(video_max_age_s=7200, video_max_bytes=2**30))
    try:
        raw = await js.stream_info(bus_names.raw_stream)
        video = await js.stream_info(bus_names.video_stream)
        events = await js.stream_info(bus_names.events_stream)
        # Invariant 1: unmasked frames only ever in memory, for seconds.
        assert raw.config.storage == StorageType.MEMORY
        assert raw.config.max_age is not None and raw.config.max_age <= 120
        assert video.config.storage == StorageType.FILE
        assert video.config.max_age == 7200  # the second call updated the limits
        assert events.config.storage == StorageType.FILE
    finally:
        for s in (bus_names.raw_stream, bus_names.video_stream, bus_names.events_stream):
            await js.delete_stream(s)


async def test_frame_round_trips_with_every_header(probe_nc: NATS, streams: BusNames) -> None:
    js = jetstream(probe_nc)
    frame = _frame()
    sub = await js.pull_subscribe(streams.video("palaiseau", "mairie-parvis"), stream=streams.video_stream)
    ack = await publish_frame(js, streams, frame, stage="video")
    assert not ack.duplicate
    again = await publish_frame(js, streams, frame, stage="video")
    assert again.duplicate, "Nats-Msg-Id must make a retried publish a duplicate"
    (msg,) = await sub.fetch(1, timeout=5)
    received = Frame.from_message(msg.headers, msg.data)
    assert received == frame
    assert msg.headers["Nats-Msg-Id"] == "palaiseau.mairie-parvis.s1.42"
    await msg.ack()


@pytest.mark.unit
def test_malformed_frame_headers_are_refused_with_a_reason() -> None:
    good = _frame().to_headers()
    with pytest.raises(FrameMessageError, match="no headers"):
        Frame.from_message(None, b"x")
    for header, bad in [("Vigie-Width", "wide"), ("Vigie-Time-Base", "1/0"),
                        ("Vigie-Parameter-Sets", "!!notbase64"), ("Vigie-Codec", "mjpeg")]:
        with pytest.raises(FrameMessageError, match="malformed"):
            Frame.from_message({**good, header: bad}, b"x")
    missing = dict(good)
    del missing["Vigie-Capture-Time-Ns"]
    with pytest.raises(FrameMessageError):
        Frame.from_message(missing, b"x")


@pytest.mark.unit
def test_subject_tokens() -> None:
    names = BusNames()
    assert names.raw("palaiseau", "gare") == "vigie.raw.palaiseau.gare"
    assert parse_camera_subject("vigie.video.palaiseau.gare") == ("palaiseau", "gare")
    assert BusNames("t1").raw_stream == "T1_RAW"
    for bad in ("Palaiseau", "a.b", "a b", "*", ">", ""):
        with pytest.raises(ValueError):
            check_token(bad, "commune")


async def test_an_event_with_no_stream_to_take_it_is_lost_loudly_never_raised(
    probe_nc: NATS, bus_names: BusNames,
) -> None:
    """Issue 35: while a NATS node dies and EVENTS elects a new leader, a publish gets no
    answer from the stream; make compose-check saw it end masking's camera task. Events are
    notifications: the work goes on."""
    from vigie.plumbing.bus.events import MaskingRecovered, publish_event_or_log

    event = MaskingRecovered(commune="palaiseau", camera="gare", mask_version=1)
    # No stream behind these subjects (ensure_streams not called for this test's names).
    assert await publish_event_or_log(jetstream(probe_nc), bus_names, event) is False
