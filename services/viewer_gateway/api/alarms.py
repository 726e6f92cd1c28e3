"""The alarm list (issue 18): open alarms and their history for your communes, acknowledged by a
named agent (journaled). Raised and cleared by the gateway (services/viewer_gateway/alarms.py);
new ones are pushed over the session's event socket."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records.audit_register import Entry, record

from services.viewer_gateway.api.deps import PROBLEMS, GatewayDep, LiveUser
from services.viewer_gateway.api.models import Line
from services.viewer_gateway.policy import ROLE_PERMISSIONS

router = APIRouter(prefix="/api/alarms", tags=["alarms"])
Kind = Literal["camera_lost", "masking_failed", "recorder_late", "authorisation_expiring",
               "unauthorised", "below_norms"]


class AlarmView(BaseModel):
    id: int
    commune: str
    camera: str
    camera_name: str
    kind: Kind
    detail: str
    raised_at: datetime
    cleared_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_comment: str | None = Field(None, description="What the agent said on acknowledging")


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    comment: Line | None = Field(None, description="What was seen or done "
                                 "(« patrouille envoyée », « travaux connus »): journaled")


# Alarms an agent at the screens cannot act on: an order about to end, a camera set below the
# technical norms (R35) are the commune's administrators' (Conformité, the alerts); agents see
# them only with the configuration right (issue 38).
ADMINISTRATIVE = ["authorisation_expiring", "below_norms"]

SELECT = ("SELECT a.*, c.slug AS camera, c.name AS camera_name FROM alarms a "
          "JOIN cameras c ON c.id = a.camera_id ")


@router.get("", responses=PROBLEMS, summary="Open alarms (state=open) or the history (state=all)")
async def list_alarms(user: LiveUser, gw: GatewayDep,
                      state: Literal["open", "all"] = "open",
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AlarmView]:
    configures = any("configuration" in ROLE_PERMISSIONS.get(r, ()) for r in user.roles)
    rows = await gw.pool.fetch(
        SELECT + "WHERE a.commune = ANY($1) AND ($2 OR a.cleared_at IS NULL) "
        "AND ($4 OR a.kind <> ALL($5::text[])) "
        "ORDER BY a.raised_at DESC, a.id DESC LIMIT $3", list(user.communes), state == "all",
        limit, configures, ADMINISTRATIVE)
    return [AlarmView(**dict(r)) for r in rows]


@router.post("/{alarm_id}/ack", responses=PROBLEMS, summary="Acknowledge an alarm (journaled)")
async def acknowledge(alarm_id: Annotated[int, "alarm id"], user: LiveUser,
                      gw: GatewayDep, body: Acknowledgement | None = None) -> AlarmView:
    comment = (body.comment or None) if body else None
    if not 0 < alarm_id < 2**62:
        raise NotFound("no such alarm in your communes", code="alarm.not_found")
    async with gw.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(SELECT + "WHERE a.id = $1 FOR UPDATE OF a", alarm_id)
        if row is None or row["commune"] not in user.communes:
            raise NotFound("no such alarm in your communes", code="alarm.not_found")
        if row["acknowledged_by"] is not None:
            raise Refusal(f"already acknowledged by {row['acknowledged_by']}",
                          code="alarm.already_acknowledged", by=row['acknowledged_by'],
                          kind="conflict")
        await conn.execute("UPDATE alarms SET acknowledged_by = $2, acknowledged_at = now(), "
                           "ack_comment = $3 WHERE id = $1", alarm_id, user.username, comment)
        await record(conn, Entry(actor=user.username, action="alarm.acknowledged",
                                 commune=row["commune"],
                                 cameras=[f"{row['commune']}/{row['camera']}"],
                                 details={"alarm": alarm_id, "kind": row["kind"],
                                          "post": user.post, "comment": comment}))
        row = await conn.fetchrow(SELECT + "WHERE a.id = $1", alarm_id)
    return AlarmView(**dict(row))
