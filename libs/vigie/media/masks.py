"""Privacy masks (DESIGN.md "Masks", REGULATION.md R1): the document, its validation, and burning
it into decoded YUV 4:2:0 pictures in place.

Geometry is rasterised once per (mask version, resolution); a frame costs only the writes into its
planes. No RGB round trip: converting to BGR and back halves throughput (../shared/ENVIRONMENT.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigie.plumbing.refusals import Refusal

Point = Annotated[list[float], Field(min_length=2, max_length=2)]
Mode = Literal["fill", "pixelate", "blur"]
FILL_Y, FILL_UV = 16, 128  # black
# Bounds of a document (docs/masking.md): enough for any façade, small enough that validation
# (quadratic in the points of a polygon) stays in the milliseconds, whoever sends the document.
MAX_POLYGONS = 200
MAX_POINTS = 100
MAX_LABEL = 200


class MaskError(Refusal):
    """An invalid mask document; the message says which polygon and why."""

    domain = "mask"


def _segments_cross(p1: tuple[float, float], p2: tuple[float, float],
                    q1: tuple[float, float], q2: tuple[float, float]) -> bool:
    def orient(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    def on_segment(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> bool:
        return (min(a[0], b[0]) <= c[0] <= max(a[0], b[0])
                and min(a[1], b[1]) <= c[1] <= max(a[1], b[1]))

    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return any(d == 0 and on_segment(a, b, c) for d, a, b, c in
               ((d1, q1, q2, p1), (d2, q1, q2, p2), (d3, p1, p2, q1), (d4, p1, p2, q2)))


def self_intersects(points: list[tuple[float, float]]) -> bool:
    """True if two non-adjacent edges of the closed outline touch or cross."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # adjacent edges share a vertex
            if _segments_cross(*edges[i], *edges[j]):
                return True
    return False


class Polygon(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="", max_length=MAX_LABEL, pattern=r"^[^\x00-\x1f\x7f]*$")
    mode: Mode = "fill"
    points: list[Point] = Field(max_length=MAX_POINTS)

    @field_validator("points")
    @classmethod
    def _valid_outline(cls, points: list[list[float]]) -> list[list[float]]:
        if len(points) < 3:
            raise ValueError(f"a polygon needs at least 3 points, got {len(points)}")
        for x, y in points:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"point ({x}, {y}) is outside 0..1")
        if self_intersects([(p[0], p[1]) for p in points]):
            raise ValueError("the outline intersects itself")
        return points


class MaskDocument(BaseModel):
    """A camera's versioned mask document, as exchanged in JSON (DESIGN.md)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    camera: str = ""
    version: int = Field(default=1, ge=1)
    masks: list[Polygon] = Field(default_factory=list, max_length=MAX_POLYGONS)

    @classmethod
    def parse(cls, data: str | bytes | dict[str, object]) -> MaskDocument:
        """Validate; any problem raises ``MaskError`` naming the polygon and the reason."""
        from pydantic import ValidationError

        try:
            if isinstance(data, dict):
                return cls.model_validate(data)
            return cls.model_validate_json(data)
        except ValidationError as exc:
            reasons = []
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                reasons.append(f"{loc}: {msg}" if loc else msg)
            raise MaskError("invalid mask document: " + "; ".join(reasons),
                            code="mask.invalid", reasons="; ".join(reasons)) from None


@dataclass(frozen=True)
class _Region:
    mode: Mode
    y0: int
    y1: int
    x0: int
    x1: int
    luma: np.ndarray  # bool mask over [y0:y1, x0:x1]
    chroma: np.ndarray  # bool mask over the chroma bbox [y0//2:(y1+1)//2, x0//2:(x1+1)//2]


class MaskGeometry:
    """A document rasterised for one resolution; ``apply`` burns it into a yuv420p picture."""

    def __init__(self, document: MaskDocument, width: int, height: int) -> None:
        self.version = document.version
        self.width, self.height = width, height
        self.block = max(8, -(-width // 40))  # pixelate blocks: at least 1/40 of the width
        self.regions: list[_Region] = []
        for polygon in document.masks:
            pts = np.array([[round(x * width), round(y * height)] for x, y in polygon.points],
                           dtype=np.int32)
            full = np.zeros((height, width), dtype=np.uint8)
            cv2.fillPoly(full, [pts], 1)
            # Cover the outline's boundary pixels too: a mask errs on the side of hiding.
            cv2.polylines(full, [pts], True, 1, thickness=2)
            ys, xs = np.nonzero(full)
            if len(ys) == 0:
                continue
            # Even bounds keep luma and chroma (4:2:0) boxes aligned.
            y0, y1 = (int(ys.min()) // 2) * 2, min(height, (int(ys.max()) // 2) * 2 + 2)
            x0, x1 = (int(xs.min()) // 2) * 2, min(width, (int(xs.max()) // 2) * 2 + 2)
            luma = full[y0:y1, x0:x1].astype(bool)
            # A chroma sample is masked if any of the luma pixels it covers is (4:2:0).
            ch, cw = (luma.shape[0] + 1) // 2, (luma.shape[1] + 1) // 2
            padded = np.zeros((ch * 2, cw * 2), dtype=bool)
            padded[: luma.shape[0], : luma.shape[1]] = luma
            chroma = np.asarray(padded.reshape(ch, 2, cw, 2).any(axis=(1, 3)), dtype=bool)
            self.regions.append(_Region(polygon.mode, y0, y1, x0, x1, luma, chroma))

    @property
    def empty(self) -> bool:
        return not self.regions

    def apply(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        """Burn the masks into the planes (views of the frame's buffers, modified in place)."""
        for r in self.regions:
            cy0, cy1, cx0, cx1 = r.y0 // 2, r.y0 // 2 + r.chroma.shape[0], r.x0 // 2, \
                r.x0 // 2 + r.chroma.shape[1]
            ys, us, vs = y[r.y0:r.y1, r.x0:r.x1], u[cy0:cy1, cx0:cx1], v[cy0:cy1, cx0:cx1]
            cm = r.chroma[: us.shape[0], : us.shape[1]]
            if r.mode == "fill":
                ys[r.luma] = FILL_Y
                us[cm] = FILL_UV
                vs[cm] = FILL_UV
            elif r.mode == "pixelate":
                self._pixelate(ys, r.luma, self.block)
                self._pixelate(us, cm, max(1, self.block // 2))
                self._pixelate(vs, cm, max(1, self.block // 2))
            else:
                self._blur(ys, r.luma, self.block)
                self._blur(us, cm, max(1, self.block // 2))
                self._blur(vs, cm, max(1, self.block // 2))

    @staticmethod
    def _pixelate(plane: np.ndarray, mask: np.ndarray, block: int) -> None:
        h, w = plane.shape
        small = cv2.resize(plane, (max(1, w // block), max(1, h // block)),
                           interpolation=cv2.INTER_AREA)
        coarse = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        # Soften the block edges so no detail survives at their borders either.
        coarse = cv2.blur(coarse, (max(3, 2 * block) | 1,) * 2)
        plane[mask] = coarse[mask]

    @staticmethod
    def _blur(plane: np.ndarray, mask: np.ndarray, block: int) -> None:
        h, w = plane.shape
        # Downscale hard, blur, upscale smoothly: a very wide blur at a fraction of a direct
        # one's cost. What survives is only the region's broad shading, no edge or texture.
        small = cv2.resize(plane, (max(1, w // 16), max(1, h // 16)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (5, 5), 0)
        wide = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        wide = cv2.blur(wide, (max(3, block) | 1,) * 2)
        plane[mask] = wide[mask]


def yuv_planes(frame: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Writable numpy views (cropped to the picture) of a yuv420p ``av.VideoFrame``'s planes.

    A decoded frame usually shares its buffers with the decoder's reference pictures: writing
    into them would smear the masks into later frames through motion compensation (seen as
    drifting blocks outside the polygons). ``make_writable`` copies the buffers when shared.
    """
    frame.make_writable()  # type: ignore[attr-defined]
    planes = frame.planes  # type: ignore[attr-defined]
    views = []
    for plane in planes[:3]:
        arr = np.frombuffer(memoryview(plane), dtype=np.uint8)
        arr = arr.reshape(-1, plane.line_size)[: plane.height, : plane.width]
        views.append(arr)
    return views[0], views[1], views[2]
