"""Requests from the gateway to the verbalisation service (NATS request-reply on
`<root>.rpc.verbalisation.<op>`) and its answers. The gateway has authorised the account (R10, R32);
the service checks again what it owns — the account's listing and powers, the camera's purpose,
the capture window (R31), the offence list (R33), the plate — and answers with the record or with
a refusal a person can act on."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vigie.records.purposes import TRAFFIC

Op = Literal["create", "still", "update", "handover"]
State = Literal["draft", "ready", "handed_over", "closed", "cancelled"]
MAX_STILLS = 3
TRAFFIC_PURPOSE = TRAFFIC  # the one purpose that allows it (R31)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str = Field(min_length=1, max_length=64)


class CreateRequest(_Request):
    commune: str = Field(min_length=1, max_length=64)
    camera: str = Field(min_length=1, max_length=64)
    capture_times: list[AwareDatetime] = Field(min_length=1, max_length=MAX_STILLS)


class StillRequest(_Request):
    offence_id: int = Field(ge=1)
    capture_time: AwareDatetime


class UpdateRequest(_Request):
    offence_id: int = Field(ge=1)
    offence_code: str | None = Field(default=None, max_length=40)
    plate: str | None = Field(default=None, max_length=20)
    plate_country: str | None = Field(default=None, max_length=2)
    state: Literal["ready", "closed", "cancelled"] | None = None
    cancel_reason: str | None = Field(default=None, max_length=500)


class HandoverRequest(_Request):
    offence_id: int = Field(ge=1)


REQUESTS: dict[str, type[_Request]] = {"create": CreateRequest, "still": StillRequest,
                                       "update": UpdateRequest, "handover": HandoverRequest}


class Refused(Exception):
    """A refusal with its HTTP status and reason (the gateway answers with them)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class Still(BaseModel):
    n: int
    capture_time: datetime
    sha256: str
    width: int
    height: int
    size_bytes: int
    mask_version: int
    erased: bool


class OffenceRecord(BaseModel):
    id: int
    commune: str
    camera: str
    camera_name: str
    place: str
    agent: str
    agent_number: str
    state: State
    offence_code: str | None
    offence_label: str | None
    offence_article: str | None
    natinf: str | None
    plate: str | None
    plate_country: str | None
    created_at: datetime
    ready_at: datetime | None
    handed_over_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    stills_erase_at: datetime
    stills_erased_at: datetime | None
    stills: list[Still]


OFFENCE_SQL = """
SELECT o.*, c.slug AS camera, c.name AS camera_name FROM offences o
JOIN cameras c ON c.id = o.camera_id WHERE o.id = $1
"""


async def load_offence(conn: asyncpg.Pool | asyncpg.Connection,
                       offence_id: int) -> OffenceRecord | None:
    """An offence with its stills, as the service and the gateway show it."""
    row = await conn.fetchrow(OFFENCE_SQL, offence_id)
    if row is None:
        return None
    stills = await conn.fetch("SELECT * FROM offence_stills WHERE offence_id = $1 ORDER BY n",
                              offence_id)
    return OffenceRecord(
        **{k: row[k] for k in OffenceRecord.model_fields if k != "stills" and k in row},
        stills=[Still(n=s["n"], capture_time=s["capture_time"], sha256=s["sha256"],
                      width=s["width"], height=s["height"], size_bytes=s["size_bytes"],
                      mask_version=s["mask_version"], erased=s["erased_at"] is not None)
                for s in stills])


def reply_ok(payload: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, **payload}


def reply_refused(exc: Refused) -> dict[str, Any]:
    return {"ok": False, "status": exc.status, "error": exc.reason}
