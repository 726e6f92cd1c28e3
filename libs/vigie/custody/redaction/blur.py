"""The blur of a redacted copy: strong enough that a face or a plate is not recognisable, and
irreversible.

Each plane is shrunk by averaging (INTER_AREA) to one sample per block of side
`block = max(8, short side / 24)` pixels — 45 px at 1080p, 15 px at 360p — then enlarged back
smoothly. A face a few metres from a street camera spans 40–120 px at 1080p, a plate's characters
10–25 px: a block of 1/24 of the short side leaves at most a few samples across a face and less
than one per character, which no one can recognise, and the averaging throws away what was in each
block (no key, no reversible filter: the data is not there any more). The same block, relative to
the picture, at every resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

BLOCK_FRACTION = 24


def block_size(width: int, height: int) -> int:
    return max(8, min(width, height) // BLOCK_FRACTION)


def blurred(plane: np.ndarray, block: int) -> np.ndarray:
    h, w = plane.shape
    small = cv2.resize(plane, (max(1, w // block), max(1, h // block)),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
