"""The masking pipeline driven frame by frame with real codecs (issue 17): what cameras send that
blocked or broke it — full range, 10 bits, odd sizes — a picture that changed under approved masks,
and a switch into or out of passthrough, which happens only at a keyframe (DESIGN.md invariant 1)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from vigie.media.bitstream import parameter_sets
from vigie.media.masks import MaskDocument
from vigie.plumbing.bus.frames import Frame

from services.masking.core import SOURCE_CHANGED, CameraPipeline, CameraPolicy
from tests.clips import scene

pytestmark = pytest.mark.unit
TOP_LEFT = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]
GOP = 10


def raw_frames(count: int, *, width: int = 320, height: int = 240, pix_fmt: str = "yuv420p",
               codec: str = "libx264") -> list[Frame]:
    """What ingest publishes: one access unit per frame, parameter sets on keyframes."""
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, pix_fmt
    encoder.time_base = Fraction(1, 25)
    encoder.gop_size = GOP
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "scenecut": "0"}
    packets = []
    for i in range(count):
        picture = av.VideoFrame.from_ndarray(scene(i, width, height), format="bgr24")
        picture = picture.reformat(format=pix_fmt)
        picture.pts = i
        packets += list(encoder.encode(picture))
    packets += list(encoder.encode(None))
    out = []
    for i, packet in enumerate(packets):
        data = bytes(packet)
        out.append(Frame(commune="palaiseau", camera="gare", codec="h264", width=width,
                         height=height, pts=i * 3600, dts=i * 3600,
                         time_base=Fraction(1, 90000), keyframe=packet.is_keyframe,
                         capture_time_ns=10**18 + i * 40_000_000, session="s", seq=i,
                         parameter_sets=parameter_sets(data) if packet.is_keyframe else None,
                         data=data))
    return out


def policy(masks: list[dict] | None, version: int = 1,  # type: ignore[type-arg]
           size: tuple[int, int] | None = None) -> CameraPolicy:
    document = MaskDocument(version=version, masks=masks or [])
    return CameraPolicy(state="active", document=document, picture_size=size)


def decode(frames: list[Frame]) -> list[av.VideoFrame]:
    decoder = av.CodecContext.create("h264", "r")
    pictures = []
    for frame in frames:
        pictures += list(decoder.decode(av.Packet(frame.data)))
    return pictures + list(decoder.decode(None))


def top_left_luma(picture: av.VideoFrame) -> float:
    gray = picture.to_ndarray(format="gray")
    return float(gray[: picture.height // 2 - 4, : picture.width // 2 - 4].mean())


@pytest.mark.parametrize(("pix_fmt", "width", "height"), [
    ("yuvj420p", 320, 240),      # full range: very common on IP cameras
    ("yuv420p10le", 320, 240),   # 10 bits
    ("yuv444p", 321, 241),       # an odd picture size (4:4:4: libx264 cannot write odd 4:2:0)
])
def test_pictures_cameras_send_are_masked_and_published_R1(pix_fmt: str, width: int,
                                                           height: int) -> None:
    pipeline = CameraPipeline("palaiseau", "gare")
    pipeline.set_policy(policy([{"points": TOP_LEFT}]))
    out = [f for raw in raw_frames(30, width=width, height=height, pix_fmt=pix_fmt)
           for f in pipeline.process(raw)]
    assert pipeline.blocked is None, pipeline.blocked
    assert len(out) >= 25 and out[0].keyframe
    assert {(f.width, f.height) for f in out} == {(width + width % 2, height + height % 2)}
    pictures = decode(out)
    assert all(p.format.name == "yuv420p" for p in pictures), "what browsers decode"
    assert max(top_left_luma(p) for p in pictures) < 30, "the masked quarter is black"
    # Outside the masks the scene (light background) is intact.
    assert all(p.to_ndarray(format="gray")[-20:, -20:].mean() > 150 for p in pictures)


def test_a_picture_other_than_the_approved_one_publishes_nothing() -> None:
    """Issue 17: a camera whose source changed kept its approved masks."""
    pipeline = CameraPipeline("palaiseau", "gare")
    pipeline.set_policy(policy([{"points": TOP_LEFT}], size=(320, 240)))
    assert [f for raw in raw_frames(12) for f in pipeline.process(raw)], "the approved picture"
    out = [f for raw in raw_frames(30, width=640, height=360) for f in pipeline.process(raw)]
    assert out == [] and pipeline.blocked is not None
    assert pipeline.blocked.reason == SOURCE_CHANGED and "640x360" in pipeline.blocked.detail
    # Empty masks (passthrough) are held to the same rule.
    passing = CameraPipeline("palaiseau", "gare")
    passing.set_policy(policy([], size=(320, 240)))
    assert not [f for raw in raw_frames(12, width=640, height=360) for f in passing.process(raw)]


def _run(pipeline: CameraPipeline, frames: list[Frame], switch_at: int,
         new: CameraPolicy) -> list[Frame]:
    out = []
    for i, raw in enumerate(frames):
        if i == switch_at:
            pipeline.set_policy(new)
        out += pipeline.process(raw)
    return out


def test_a_switch_to_passthrough_waits_for_the_sources_keyframe() -> None:
    """Issue 17: an empty document approved mid-GOP passed raw P-frames at once."""
    frames = raw_frames(3 * GOP)
    pipeline = CameraPipeline("palaiseau", "gare")
    pipeline.set_policy(policy([{"points": TOP_LEFT}], version=1))
    out = _run(pipeline, frames, GOP + 3, policy([], version=2))
    first_v2 = next(i for i, f in enumerate(out) if f.mask_version == 2)
    assert out[first_v2].keyframe and out[first_v2].data == frames[2 * GOP].data
    assert all(f.mask_version == 1 for f in out[:first_v2]), "masking went on until then"
    assert all(f.mask_version == 2 for f in out[first_v2:])
    assert len(out) == len(frames), "no frame lost at the switch"
    v1_pictures = decode(out[:first_v2])
    assert len(v1_pictures) == first_v2 and max(map(top_left_luma, v1_pictures)) < 30


def test_a_switch_from_passthrough_to_masks_starts_at_a_keyframe() -> None:
    frames = raw_frames(3 * GOP)
    pipeline = CameraPipeline("palaiseau", "gare")
    pipeline.set_policy(policy([], version=1))
    out = _run(pipeline, frames, GOP + 3, policy([{"points": TOP_LEFT}], version=2))
    assert [f.data for f in out[:GOP + 3]] == [f.data for f in frames[:GOP + 3]]
    rest = out[GOP + 3:]
    assert rest[0].mask_version == 2 and rest[0].keyframe
    assert rest[0].capture_time_ns == frames[2 * GOP].capture_time_ns, \
        "nothing unmasked after the approval: the source's P-frames wait for its keyframe"
    assert max(map(top_left_luma, decode(rest))) < 30


def test_a_yuv_picture_flagged_full_range_is_converted() -> None:
    from vigie.media.pictures import maskable

    picture = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 255, np.uint8), format="bgr24")
    full = picture.reformat(format="yuvj420p")
    converted = maskable(full)
    assert converted.format.name == "yuv420p" and converted.color_range == 1
    assert converted.to_ndarray(format="gray").mean() > 240, "white stays white"


def test_masks_approved_after_none_read_as_starting_not_as_a_failure() -> None:
    """Issue 18: a camera read « masquage en échec » after its masks were approved, until a
    restart. With approved masks, waiting for a keyframe is starting; nothing passes before it."""
    pipeline = CameraPipeline("palaiseau", "gare")
    pipeline.set_policy(CameraPolicy(state="active", document=None))
    frames = raw_frames(2 * GOP)
    assert pipeline.process(frames[0]) == []
    assert pipeline.blocked is not None and pipeline.blocked.reason == "masks_unavailable"
    pipeline.set_policy(policy([]))
    pipeline.apply_pending()
    assert pipeline.blocked is not None and pipeline.blocked.reason == "starting"
    assert pipeline.process(frames[1]) == [], "a P-frame passes nothing (fail closed)"
    assert pipeline.process(frames[GOP]), "the next keyframe starts the video"
    assert pipeline.blocked is None
