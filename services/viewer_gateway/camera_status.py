"""One camera status for every screen: the wall, the panes, the full screen and the alarms all
say the same thing about a camera (issue 18: « masquage en échec » in one place and « hors ligne »
in another made agents doubt both)."""

from __future__ import annotations

from typing import Literal

from vigie.plumbing.bus.events import MASKING_STARTING

Status = Literal["disabled", "commissioning", "unauthorised", "masking_failed", "offline",
                 "starting", "online"]


def masking_state(ok: bool | None, detail: str | None) -> Literal["ok", "starting", "failed"] | None:
    if ok is None:
        return None
    if ok:
        return "ok"
    return "starting" if (detail or "").startswith(MASKING_STARTING) else "failed"


def camera_status(state: str, online: bool | None, masking_ok: bool | None,
                  masking_detail: str | None, authorised: bool = True) -> Status:
    """What an agent is told, most serious first: a camera out of service, then no valid
    prefectoral authorisation (R3: nothing is recorded or shown), then masking blocked for a cause
    (nothing is shown), then no picture from the camera, then masking waiting for its first
    keyframe."""
    if state in ("disabled", "commissioning"):
        return state  # type: ignore[return-value]
    if not authorised:
        return "unauthorised"
    masking = masking_state(masking_ok, masking_detail)
    if masking == "failed":
        return "masking_failed"
    if not online:
        return "offline"
    if masking != "ok":
        return "starting"
    return "online"
