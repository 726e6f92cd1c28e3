"""H.264/H.265 Annex-B helpers: split access units into NAL units, find parameter sets."""

from __future__ import annotations

import re

_START = re.compile(b"\x00\x00\x01")
H264_PARAMETER_SETS = {7, 8}  # SPS, PPS
HEVC_PARAMETER_SETS = {32, 33, 34}  # VPS, SPS, PPS


def nal_units(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B buffer, without their start codes."""
    starts = [m.end() for m in _START.finditer(data)]
    units = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        unit = data[start:end].rstrip(b"\x00") if i + 1 < len(starts) else data[start:end]
        if unit:
            units.append(unit)
    return units


def nal_type(unit: bytes, codec: str) -> int:
    return (unit[0] >> 1) & 0x3F if codec == "hevc" else unit[0] & 0x1F


def parameter_sets(data: bytes, codec: str = "h264") -> bytes | None:
    """The SPS/PPS (and VPS) carried in an access unit, as Annex-B, or None."""
    wanted = HEVC_PARAMETER_SETS if codec == "hevc" else H264_PARAMETER_SETS
    found = [u for u in nal_units(data) if nal_type(u, codec) in wanted]
    return b"".join(b"\x00\x00\x00\x01" + u for u in found) or None
