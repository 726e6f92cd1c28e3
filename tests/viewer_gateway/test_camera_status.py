"""One status per camera for every screen (issue 18): the wall said « hors ligne » and the full screen
« masquage en échec » for a camera whose masking was only starting."""

from __future__ import annotations

import pytest

from services.viewer_gateway.camera_status import camera_status

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("state", "online", "ok", "detail", "expected"), [
    ("disabled", True, True, "", "disabled"),
    ("commissioning", True, False, "commissioning: camera is commissioning", "commissioning"),
    ("active", True, False, "masks_unavailable: no approved mask document", "masking_failed"),
    ("active", False, False, "decode: InvalidDataError", "masking_failed"),
    ("active", False, False, "starting: waiting for the first keyframe", "offline"),
    ("active", None, None, None, "offline"),
    ("active", True, False, "starting: waiting for a keyframe under version 2", "starting"),
    ("active", True, None, None, "starting"),
    ("active", True, True, "", "online"),
])
def test_the_most_serious_cause_is_the_one_every_screen_shows(
    state: str, online: bool | None, ok: bool | None, detail: str | None, expected: str,
) -> None:
    assert camera_status(state, online, ok, detail) == expected
