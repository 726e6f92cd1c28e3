"""Detectors that assist the operator — never decide: faces (CenterFace through `cv2.dnn`, weights
vendored with their licence and SHA-256) and moving vehicles (background subtraction), proposed as
boxes to blur inside the kept region too (another person beside the requester). They run on the
frames of the copy being made only, identify no one, and their boxes are discarded with the job
(R29; docs/right-of-access.md says what they miss)."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

import cv2
import numpy as np

from vigie.custody.redaction.keep import Box

MODEL_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
OUTPUTS = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks
FACE_THRESHOLD = 0.4  # lower than the model's usual 0.5: a missed face is the costly mistake
DETECT_WIDTH = 960  # faces are looked for on the picture brought down to this width (speed)
MIN_VEHICLE_AREA = 0.004  # of the picture: smaller moving blobs are noise or pedestrians
WARM_UP = 12  # pictures the background model learns from before it proposes anything
VEHICLE_ASPECT = 1.1  # width / height: a vehicle seen from a street pole is wider than tall —
# a walking person (the requester too) is taller than wide, and stays in the kept region


class DetectorError(RuntimeError):
    """The vendored model is missing or altered: no detection rather than a wrong one."""


@cache
def _net() -> cv2.dnn.Net:
    data = (resources.files("vigie.custody.redaction") / "models" / "centerface.onnx").read_bytes()
    if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
        raise DetectorError("the face detector's weights do not match their SHA-256")
    # From the very bytes checked (not the path again: they could change in between).
    return cv2.dnn.readNetFromONNX(np.frombuffer(data, np.uint8))


def faces(rgb: np.ndarray, *, threshold: float = FACE_THRESHOLD) -> list[Box]:
    """Face boxes (x, y, w, h) in the picture's pixels."""
    full_h, full_w = rgb.shape[:2]
    if full_w > DETECT_WIDTH:
        factor = DETECT_WIDTH / full_w
        small = cv2.resize(rgb, (DETECT_WIDTH, round(full_h * factor)), interpolation=cv2.INTER_AREA)
        return [(round(x / factor), round(y / factor), round(bw / factor) + 1,
                 round(bh / factor) + 1) for x, y, bw, bh in faces(small, threshold=threshold)]
    h, w = rgb.shape[:2]
    nw, nh = int(np.ceil(w / 32) * 32), int(np.ceil(h / 32) * 32)
    net = _net()
    net.setInput(cv2.dnn.blobFromImage(rgb, 1.0, (nw, nh), (0, 0, 0), swapRB=False, crop=False))
    heatmap, scale, offset, _ = net.forward(OUTPUTS)
    heat = np.squeeze(heatmap)
    rows, cols = np.where(heat > threshold)
    boxes: list[tuple[float, float, float, float, float]] = []
    for r, c in zip(rows, cols, strict=True):
        s0, s1 = np.exp(scale[0, 0, r, c]) * 4, np.exp(scale[0, 1, r, c]) * 4
        o0, o1 = offset[0, 0, r, c], offset[0, 1, r, c]
        x1 = max(0.0, (c + o1 + 0.5) * 4 - s1 / 2)
        y1 = max(0.0, (r + o0 + 0.5) * 4 - s0 / 2)
        boxes.append((x1, y1, min(x1 + s1, nw), min(y1 + s0, nh), float(heat[r, c])))
    kept = _nms(boxes, 0.3)
    sx, sy = w / nw, h / nh
    out: list[Box] = []
    for x1, y1, x2, y2, _score in kept:
        # A margin of a quarter of the face: hair, ears and chin go too.
        mx, my = (x2 - x1) * 0.25, (y2 - y1) * 0.25
        ax, ay = max(0, int((x1 - mx) * sx)), max(0, int((y1 - my) * sy))
        bx, by = min(w, int((x2 + mx) * sx) + 1), min(h, int((y2 + my) * sy) + 1)
        if bx > ax and by > ay:
            out.append((ax, ay, bx - ax, by - ay))
    return out


def _nms(boxes: list[tuple[float, float, float, float, float]],
         overlap: float) -> list[tuple[float, float, float, float, float]]:
    kept: list[tuple[float, float, float, float, float]] = []
    for box in sorted(boxes, key=lambda b: -b[4]):
        if all(_iou(box, k) < overlap for k in kept):
            kept.append(box)
    return kept


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class MovingVehicles:
    """Moving blobs of a vehicle's size and shape (background subtraction over the copy's frames):
    a heuristic that proposes, never a classifier."""

    def __init__(self) -> None:
        self._model = cv2.createBackgroundSubtractorMOG2(history=200, detectShadows=False)
        self._seen = 0

    def boxes(self, luma: np.ndarray) -> list[Box]:
        mask = self._model.apply(luma)
        self._seen += 1
        if self._seen <= WARM_UP:
            # Before it has learnt the scene everything looks like it moves: the first picture
            # would be one picture-sized "vehicle", and the requester's box blurred whole.
            return []
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
        mask = cv2.dilate(mask, np.ones((9, 9), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        floor = MIN_VEHICLE_AREA * luma.shape[0] * luma.shape[1]
        boxes = [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= floor]
        return [(int(x), int(y), int(w), int(h)) for x, y, w, h in boxes
                if w >= VEHICLE_ASPECT * h]
