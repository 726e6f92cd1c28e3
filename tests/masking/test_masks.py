"""Mask documents and their geometry (DESIGN.md "Masks", REGULATION.md R1)."""

from __future__ import annotations

import av
import numpy as np
import pytest
from vigie.media.masks import FILL_Y, MaskDocument, MaskError, MaskGeometry, yuv_planes

pytestmark = pytest.mark.unit


def doc(*polygons: dict) -> dict:  # type: ignore[type-arg]
    return {"schema_version": 1, "camera": "p/c", "version": 3, "masks": list(polygons)}


SQUARE = {"label": "fenêtre", "points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]}


@pytest.mark.parametrize("polygon, reason", [
    ({"points": [[0.1, 0.1], [0.2, 0.2]]}, "at least 3 points"),
    ({"points": [[0.1, 0.1], [1.2, 0.2], [0.3, 0.9]]}, "outside 0..1"),
    ({"points": [[-0.01, 0.1], [0.2, 0.2], [0.3, 0.9]]}, "outside 0..1"),
    ({"points": [[0, 0], [1, 1], [1, 0], [0, 1]]}, "intersects itself"),
    ({"mode": "erase", "points": SQUARE["points"]}, "mode"),
])
def test_invalid_polygons_are_refused_with_a_reason_R1(polygon: dict, reason: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(MaskError, match=reason):
        MaskDocument.parse(doc(polygon))


def test_valid_document_parses_with_fill_default() -> None:
    parsed = MaskDocument.parse(doc(SQUARE))
    assert parsed.version == 3 and parsed.masks[0].mode == "fill"
    with pytest.raises(MaskError):
        MaskDocument.parse('{"schema_version": 1, "masks": [], "surprise": 1}')
    with pytest.raises(MaskError):
        MaskDocument.parse("not json")


def _frame(width: int, height: int) -> av.VideoFrame:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


@pytest.mark.parametrize("size", [(640, 360), (641, 361), (1920, 1080)])
def test_fill_hides_every_pixel_of_the_polygon_in_every_plane(size: tuple[int, int]) -> None:
    width, height = size
    frame = _frame(width, height)
    geometry = MaskGeometry(MaskDocument.parse(doc(SQUARE)), width, height)
    y, u, v = yuv_planes(frame)
    geometry.apply(y, u, v)
    x0, x1, y0, y1 = round(0.1 * width), round(0.5 * width), round(0.1 * height), round(0.5 * height)
    assert (y[y0:y1 + 1, x0:x1 + 1] == FILL_Y).all()  # the outline itself is covered
    assert (u[y0 // 2:(y1 + 1) // 2, x0 // 2:(x1 + 1) // 2] == 128).all()
    # and the picture read back from the frame (not our views) carries it
    back = frame.to_ndarray(format="gray")
    assert (back[y0 + 2:y1 - 2, x0 + 2:x1 - 2] < 20).all()
    assert y[height - 5:, width - 5:].std() > 10, "outside is untouched"


def test_pixelate_blocks_are_at_least_a_fortieth_of_the_width() -> None:
    geometry = MaskGeometry(MaskDocument.parse(doc({**SQUARE, "mode": "pixelate"})), 1280, 720)
    assert geometry.block >= 1280 / 40


def test_geometry_follows_resolution_since_points_are_normalised() -> None:
    document = MaskDocument.parse(doc(SQUARE))
    small, large = MaskGeometry(document, 320, 180), MaskGeometry(document, 1920, 1080)
    assert small.regions[0].luma.mean() == pytest.approx(large.regions[0].luma.mean(), abs=0.05)
    assert MaskGeometry(MaskDocument.parse(doc()), 320, 180).empty
