"""The one policy: every action of the gateway is decided here, from the account's permissions × its
commune scope × the commune's hand-over state × the camera's state (REGULATION.md R8–R10, R27;
DESIGN.md invariant 5). Deny by default. docs/authorization.md holds the expected decisions, written
independently by hand; tests/viewer_gateway/test_authorization.py checks this against it over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Holder = Literal["municipal_police", "national_police"]
Action = Literal["live", "playback", "export", "mask_admin", "holds", "rights_requests",
                 "verbalisation", "register_audit", "user_admin", "configuration", "handover",
                 "commune_admin"]
ACTIONS: tuple[Action, ...] = ("live", "playback", "export", "mask_admin", "holds",
                               "rights_requests", "verbalisation", "register_audit", "user_admin",
                               "configuration", "handover", "commune_admin")
CameraState = Literal["commissioning", "active", "disabled"]

ROLE_PERMISSIONS: dict[str, frozenset[Action]] = {
    "operator": frozenset({"live", "playback", "verbalisation"}),
    "supervisor": frozenset({"live", "playback", "export", "holds", "rights_requests",
                             "verbalisation", "handover"}),
    "national_police": frozenset({"live", "playback"}),
    "mask_admin": frozenset({"mask_admin"}),
    "admin": frozenset({"user_admin", "configuration"}),  # no image rights by default
    "auditor": frozenset({"register_audit"}),
    # Above the communes' administrators: creates communes (and is designated for each one it
    # creates, to name its first accounts); no image rights, no configuration of cameras.
    "deployment_admin": frozenset({"commune_admin", "user_admin"}),
}
MUNICIPAL_ROLES = frozenset({"operator", "supervisor"})
# Rights that follow the hand-over: whoever holds the commune watches it (R27).
HANDOVER_BOUND: frozenset[Action] = frozenset({"live", "playback", "verbalisation"})
# No image of a camera being commissioned: its masks are not approved yet (invariant 1).
NEEDS_APPROVED_MASKS: frozenset[Action] = frozenset({"live", "playback", "export",
                                                     "verbalisation"})
# No habilitation to see images, export or verbalise without data-protection training (R11).
NEEDS_TRAINING: frozenset[Action] = frozenset({"live", "playback", "export", "verbalisation"})
UNTRAINED = ("no data-protection training date on your account (R11): ask your administrator "
             "to record it")
# A disabled camera sends nothing live; its recordings remain until they expire.
NEEDS_LIVE_CAMERA: frozenset[Action] = frozenset({"live", "verbalisation"})
HOLDER_NAMES = {"municipal_police": "the municipal police", "national_police": "the national police"}


@dataclass(frozen=True)
class Subject:
    roles: frozenset[str]
    communes: frozenset[str]
    trained: bool = True  # R11: the account has a data-protection training date

    @property
    def permissions(self) -> frozenset[Action]:
        return frozenset().union(*(ROLE_PERMISSIONS.get(r, frozenset()) for r in self.roles))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    code: str = ""  # the refusal's stable code (vigie.plumbing.refusals), its French in fr.js
    params: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True, "allowed")


def decide(subject: Subject, action: Action, *, commune: str | None = None,
           holder: Holder | None = None, camera_state: CameraState | None = None) -> Decision:
    if action not in subject.permissions:
        return Decision(False, f"your roles do not include the {action} permission (R10)",
                        "permission.missing", (("permission", action),))
    if commune is not None and commune not in subject.communes:
        return Decision(False, f"{commune} is not among the communes you are designated for (R9)",
                        "commune.not_designated", (("commune", commune),))
    if action in NEEDS_TRAINING and not subject.trained:
        return Decision(False, UNTRAINED, "training.missing")
    if action in HANDOVER_BOUND and commune is not None:
        holding = holder or "municipal_police"
        by_role = {r for r in subject.roles if action in ROLE_PERMISSIONS.get(r, frozenset())}
        municipal = bool(by_role & MUNICIPAL_ROLES)
        national = "national_police" in by_role
        if not ((holding == "municipal_police" and municipal)
                or (holding == "national_police" and national)):
            return Decision(False, f"{HOLDER_NAMES[holding]} hold {commune}'s cameras now "
                            "(hand-over, R27)", "handover.held_by",
                            (("holder", holding), ("commune", commune)))
    if camera_state == "commissioning" and action in NEEDS_APPROVED_MASKS:
        return Decision(False, "the camera is being commissioned: no image before its masks are "
                        "approved", "camera.commissioning")
    if camera_state == "disabled" and action in NEEDS_LIVE_CAMERA:
        return Decision(False, "the camera is disabled", "camera.disabled")
    return ALLOW


def rights(subject: Subject, *, commune: str, holder: Holder,
           camera_state: CameraState | None) -> dict[Action, Decision]:
    return {a: decide(subject, a, commune=commune, holder=holder, camera_state=camera_state)
            for a in ACTIONS}
