"""R29: no biometric, facial recognition or plate reading (LAPI), no algorithmic analysis. Vigie builds
none; these tests keep it so (issue 40: nothing guarded it). No dependency or import of a
recognition or OCR library; no column for identities, face descriptors or read plates (a plate is
only ever typed by an agent, in an offence: R31–R34); and the redaction assistants' proposals — the
only detectors Vigie has, to blur third parties for a right-of-access copy (R22) — are counted,
never kept: no box reaches a log line or the result the caller stores."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import asyncpg
import numpy as np
import pytest
import structlog
from vigie.custody.redaction.keep import KeepTrack
from vigie.custody.redaction.redact import RedactResult, redact_file

from tests.harness import REPO
from tests.redaction.test_redact_file import H, W, _write

# Distributions and modules of face or plate recognition, biometrics and OCR (PyPI names).
FORBIDDEN = {
    "face-recognition", "face_recognition", "dlib", "insightface", "deepface", "facenet-pytorch",
    "facenet", "mediapipe", "openalpr", "fast-alpr", "fast_alpr", "easyocr", "pytesseract",
    "tesserocr", "paddleocr", "keras-ocr", "keras_ocr", "compreface", "arcface", "retinaface",
}
# OpenCV's own recognition and text-reading APIs (its contrib modules and the SFace recogniser).
FORBIDDEN_CV2 = re.compile(r"cv2\.(face\b|text\b|FaceRecognizerSF|dnn_TextRecognitionModel)")
IDENTITY_COLUMNS = re.compile(r"face|biometr|embedding|descriptor|landmark|recogni|lapi|ocr")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower()


@pytest.mark.unit
def test_no_recognition_library_is_a_dependency_R29() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [_name(r) for r in project["dependencies"]]
    wanted += [_name(r) for group in project.get("optional-dependencies", {}).values()
               for r in group]
    assert wanted and "opencv-python-headless" in wanted  # the list was read
    assert not FORBIDDEN & set(wanted)


@pytest.mark.unit
def test_no_code_imports_or_calls_a_recognition_library_R29() -> None:
    sources = [p for folder in ("libs", "services") for p in (REPO / folder).rglob("*.py")]
    assert len(sources) > 100
    offenders: dict[str, list[str]] = {}
    for path in sources:
        text = path.read_text()
        modules = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module.split(".")[0])
        found = sorted(modules & FORBIDDEN) + FORBIDDEN_CV2.findall(text)
        if found:
            offenders[str(path.relative_to(REPO))] = found
    assert not offenders
    # The check sees what it looks for.
    assert FORBIDDEN_CV2.findall("cv2.FaceRecognizerSF.create(m, '')")


@pytest.mark.integration
async def test_no_table_holds_an_identity_and_plates_only_where_an_agent_types_them_R29(
    db: asyncpg.Pool, pg_schema: str,
) -> None:
    columns = [(r["table_name"], r["column_name"]) for r in await db.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = $1", pg_schema)]
    assert len({t for t, _ in columns}) > 30  # the migrated schema was read
    assert not [(t, c) for t, c in columns if IDENTITY_COLUMNS.search(c)]
    assert {t for t, c in columns if "plate" in c} == {"offences"}


@pytest.mark.integration
def test_the_redaction_detectors_proposals_are_counted_never_kept_R29(tmp_path: Path) -> None:
    """A moving vehicle beside the requester is proposed and blurred; what comes out is a count:
    no log line and no field of the result holds a box."""
    rng = np.random.default_rng(5)
    car = rng.integers(150, 255, (40, 110, 3), dtype=np.uint8)
    pictures = []
    for step in range(50):  # the street learnt first, then a car crosses it
        picture = np.full((H, W, 3), 90, np.uint8)
        if step >= 15:
            x = (step - 15) * 6
            picture[150:190, x:x + 110] = car[:, :max(0, min(110, W - x))]
        pictures.append(picture)
    source = _write(tmp_path / "rue.mp4", pictures)
    keep = KeepTrack.parse('[{"t": 0, "box": [0, 100, 320, 140]}, '
                           '{"t": 2, "box": [0, 100, 320, 140]}]')
    with structlog.testing.capture_logs() as logged:
        result = redact_file(keep, source, tmp_path / "copie.mp4", assist=True)
    assert result.proposed > 0, "the vehicle was not proposed: the test would prove nothing"
    assert set(RedactResult.__dataclass_fields__) == {"frames", "width", "height", "block",
                                                      "kept_frames", "proposed"}
    for entry in logged:
        for key, value in entry.items():
            assert not re.search(r"box|face|vehicle|detection", key), entry
            assert not (isinstance(value, (list, tuple)) and value
                        and isinstance(value[0], (list, tuple))), entry
