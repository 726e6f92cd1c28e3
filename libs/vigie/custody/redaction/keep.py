"""The requester's region over time: boxes at chosen times, interpolated linearly between them,
absent before the first and after the last (KEEP.json: `[{"t": seconds, "box": [x, y, w, h]}]`,
pixels of the picture)."""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from vigie.plumbing.refusals import Refusal

Box = tuple[int, int, int, int]  # x, y, w, h (pixels)


class KeepError(Refusal):
    """A KEEP document that cannot be right, with what to correct."""

    domain = "keep"


@dataclass(frozen=True)
class Keyframe:
    t: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class KeepTrack:
    keys: tuple[Keyframe, ...]

    @classmethod
    def parse(cls, text: str) -> KeepTrack:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise KeepError(f"not JSON: {exc}", code="keep.not_json") from None
        return cls.parse_entries(data)

    @classmethod
    def parse_entries(cls, data: object) -> KeepTrack:
        if not isinstance(data, list) or not data:
            raise KeepError("a non-empty list of {\"t\": seconds, \"box\": [x, y, w, h]}",
                            code="keep.not_a_list")
        keys: list[Keyframe] = []
        for n, entry in enumerate(data):
            if not isinstance(entry, dict) or set(entry) != {"t", "box"}:
                raise KeepError(f"entry {n}: exactly \"t\" and \"box\"",
                                code="keep.entry_fields", entry=n)
            t, box = entry["t"], entry["box"]
            if not isinstance(t, int | float) or isinstance(t, bool) or t < 0:
                raise KeepError(f"entry {n}: t is a number of seconds, 0 or more",
                                code="keep.entry_time", entry=n)
            if (not isinstance(box, list) or len(box) != 4
                    or not all(isinstance(v, int | float) and not isinstance(v, bool)
                               for v in box)):
                raise KeepError(f"entry {n}: box is [x, y, w, h] in pixels",
                                code="keep.entry_box", entry=n)
            if box[2] <= 0 or box[3] <= 0 or box[0] < 0 or box[1] < 0:
                raise KeepError(f"entry {n}: a box has a positive width and height, x and y ≥ 0",
                                code="keep.entry_box_size", entry=n)
            if keys and t <= keys[-1].t:
                raise KeepError(f"entry {n}: times must increase (t={t} after t={keys[-1].t})",
                                code="keep.times_not_increasing", entry=n)
            keys.append(Keyframe(float(t), (float(box[0]), float(box[1]), float(box[2]),
                                            float(box[3]))))
        return cls(tuple(keys))

    @classmethod
    def load(cls, path: Path) -> KeepTrack:
        try:
            return cls.parse(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise KeepError(f"{path}: {exc.strerror}", code="keep.unreadable") from None

    def check_inside(self, width: int, height: int) -> None:
        for key in self.keys:
            x, y, w, h = key.box
            if x + w > width or y + h > height:
                raise KeepError(f"t={key.t:g}: the box {list(key.box)} goes outside the "
                                f"{width}x{height} picture",
                                code="keep.box_outside", at=key.t, width=width, height=height)

    def largest_share(self, width: int, height: int) -> float:
        """The largest share of the picture a kept box covers (0..1)."""
        return max(min(1.0, (k.box[2] * k.box[3]) / (width * height)) for k in self.keys)

    def box_at(self, t: float) -> Box | None:
        """The kept box at `t` (interpolated), or None outside the track's span."""
        keys = self.keys
        if t < keys[0].t or t > keys[-1].t:
            return None
        i = bisect_right([k.t for k in keys], t) - 1
        if i >= len(keys) - 1:
            return _pixels(keys[-1].box)
        a, b = keys[i], keys[i + 1]
        f = (t - a.t) / (b.t - a.t)
        return _pixels(tuple(u + (v - u) * f for u, v in zip(a.box, b.box, strict=True)))


def _pixels(box: tuple[float, ...]) -> Box:
    x, y, w, h = (round(v) for v in box)
    return x, y, max(1, w), max(1, h)
