"""Live view over a WebSocket (issue 10): fragmented MP4 built from VIDEO (masked frames only),
starting at the latest keyframe; text messages carry the camera's state or why the view closed.
Authorised by the policy at open and again whenever rights may have changed (a hand-over switch,
an account change, every second); each view is journaled when it opens (`live.view`, with its
post) and again when it ends (`live.ended`, with what ended it), however it ends (R12)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import nats.errors
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from vigie.plumbing.bus.consumer import TRANSIENT_NATS_ERRORS
from vigie.plumbing.bus.frames import Frame, FrameMessageError
from vigie.plumbing.bus.order import FrameOrder
from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS
from vigie.plumbing.log import get_logger
from vigie.records.audit_register import Entry, record

from services.viewer_gateway.api.deps import Gateway, websocket_user
from services.viewer_gateway.api.models import Line, Text
from services.viewer_gateway.auth import User, session_user
from services.viewer_gateway.camera_status import camera_status
from services.viewer_gateway.live import (
    LiveFragmenter,
    start_at_keyframe_before,
    start_at_last_keyframe,
)
from services.viewer_gateway.policy import Decision, decide

router = APIRouter(tags=["live"])
log = get_logger(__name__)
BACKLOG_S = 6.0  # how far back a new view looks for the latest keyframe (> one GOP)
MAX_REPLAY_S = 300  # instant replay: up to five minutes back, from VIDEO
QUIET_S = 3.0  # no frame for this long: tell the viewer the camera's state instead
RECHECK_S = 1.0  # rights are re-decided at least this often


class ViewClosed(Exception):
    def __init__(self, reason: str, code: int = 4403) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


async def _decision(gw: Gateway, user: User, commune: str, camera: str) -> tuple[Decision, str]:
    row = await gw.pool.fetchrow("SELECT state FROM cameras WHERE commune = $1 AND slug = $2",
                                 commune, camera)
    if row is None:
        return Decision(False, "the camera no longer exists"), "gone"
    holder = await gw.handover.holder(commune)
    return decide(user.subject, "live", commune=commune, holder=holder,  # type: ignore[arg-type]
                  camera_state=row["state"]), row["state"]


async def _camera_state(gw: Gateway, commune: str, camera: str) -> str:
    row = await gw.pool.fetchrow(
        "SELECT c.state, h.online, h.masking_ok, h.masking_detail, ca.authorisation_state "
        "FROM cameras c JOIN camera_authorisation ca ON ca.camera_id = c.id "
        "LEFT JOIN camera_health h ON h.camera_id = c.id WHERE c.commune = $1 AND c.slug = $2",
        commune, camera)
    if row is None:
        return "gone"
    status = camera_status(row["state"], row["online"], row["masking_ok"], row["masking_detail"],
                           row["authorisation_state"] == "valid")
    return "waiting" if status == "online" else status  # online, yet nothing came for a while


LIVE_VIEW_BEAT_S = 5.0  # a live view's row is renewed this often while its socket is open
LIVE_VIEW_STALE_S = 15.0  # … and no longer counts as open once this old (a crashed gateway)
OPEN_LIVE_VIEW_SQL = """
SELECT 1 FROM live_views WHERE username = $1 AND camera = $2 AND replay_s = 0
  AND beat_at > now() - make_interval(secs => $3) LIMIT 1
"""


async def live_view_open(gw: Gateway, username: str, camera_ref: str) -> bool:
    """R31: is this agent watching this camera's live image right now (not a replay)? Asked of
    the gateway replicas' open views, not inferred from the register (issue 34)."""
    return bool(await gw.pool.fetchval(OPEN_LIVE_VIEW_SQL, username, camera_ref,
                                       LIVE_VIEW_STALE_S))


async def _open_while_running(gw: Gateway, view_id: str, username: str, camera_ref: str,
                              replay_s: int) -> None:
    await gw.pool.execute("INSERT INTO live_views (view_id, username, camera, replay_s) "
                          "VALUES ($1, $2, $3, $4)", view_id, username, camera_ref, replay_s)
    while True:
        await asyncio.sleep(LIVE_VIEW_BEAT_S)
        with contextlib.suppress(*TRANSIENT_DB_ERRORS):
            await gw.pool.execute("UPDATE live_views SET beat_at = now() WHERE view_id = $1",
                                  view_id)


@router.websocket("/api/cameras/{commune}/{camera}/live")
async def live(websocket: WebSocket, commune: str, camera: str) -> None:
    gw: Gateway = websocket.app.state.gateway
    user = await websocket_user(websocket)
    if user is None:
        await websocket.close(code=4401, reason="not signed in")
        return
    await websocket.accept()
    if commune not in user.communes or not await gw.pool.fetchval(
            "SELECT true FROM cameras WHERE commune = $1 AND slug = $2", commune, camera):
        await _close(websocket, f"no camera {commune}/{camera} in your communes", 4404)
        return
    decision, _ = await _decision(gw, user, commune, camera)
    if not decision:
        await _close(websocket, decision.reason, 4403)
        return
    try:
        params = LiveParams.model_validate({k: v for k, v in websocket.query_params.items()
                                            if k in LiveParams.model_fields})
    except ValidationError as exc:
        await _close(websocket, _first_problem(exc), 4400)
        return
    post = params.post if params.post is not None else user.post
    replay_s, reason = params.replay_s, params.reason.strip()
    if replay_s:
        # Going back is consulting a recording (R13): the playback right, and the user's reason.
        holder = await gw.handover.holder(commune)
        state = await gw.pool.fetchval("SELECT state FROM cameras WHERE commune = $1 AND "
                                       "slug = $2", commune, camera)
        replay_right = decide(user.subject, "playback", commune=commune,
                              holder=holder, camera_state=state)  # type: ignore[arg-type]
        if not replay_right:
            await _close(websocket, replay_right.reason, 4403)
            return
        if not reason:
            await _close(websocket, "an instant replay is a consultation: give its reason "
                         "(reason=…, R13)", 4400)
            return
    opened = datetime.now(UTC)
    view_id = uuid.uuid4().hex
    cameras = [f"{commune}/{camera}"]
    # Journaled as it opens (R12): a crash or a refused end entry cannot leave a view unrecorded.
    await record(gw.pool, Entry(actor=user.username, action="live.view", commune=commune,
                                cameras=cameras, period_start=opened,
                                details={"post": post, "view": view_id, "replay_s": replay_s}))
    view = _LiveView(gw, websocket, user, commune, camera, replay_s=replay_s)
    closed_by = "viewer"
    beating = asyncio.create_task(_open_while_running(gw, view_id, user.username, cameras[0],
                                                      replay_s))
    try:
        await view.run()
    except ViewClosed as exc:
        closed_by = exc.reason
        await _close(websocket, exc.reason, exc.code)
    except WebSocketDisconnect:
        closed_by = "viewer disconnected"
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await gw.pool.execute("DELETE FROM live_views WHERE view_id = $1", view_id)
        await record(gw.pool, Entry(
            actor=user.username, action="live.ended", commune=commune, cameras=cameras,
            period_start=opened, period_end=datetime.now(UTC),
            details={"post": post, "view": view_id, "frames": view.fragmenter.frames,
                     "closed_by": closed_by, "replay_s": replay_s}))
        if replay_s and view.replayed_from is not None:
            await record(gw.pool, Entry(
                actor=user.username, action="playback", commune=commune,
                cameras=cameras, period_start=view.replayed_from,
                period_end=opened, reason=f"intervention: {reason}",
                details={"post": post, "instant_replay": True, "view": view_id}))


class LiveParams(BaseModel):
    """The live socket's query: the same rules as the API's bodies (no control character)."""

    model_config = ConfigDict(extra="ignore")

    post: Line | None = None
    replay_s: int = Field(default=0, ge=0, le=MAX_REPLAY_S)
    reason: Text = ""


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    if where == "replay_s":
        return f"replay_s: a number of seconds, 0 to {MAX_REPLAY_S}"
    return f"{where}: {err['msg']} (no control characters; {where} is limited in length)"


async def _close(websocket: WebSocket, reason: str, code: int) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client may be gone
        await websocket.send_json({"type": "closed", "reason": reason})
        await websocket.close(code=code, reason=reason[:120])


class _LiveView:
    def __init__(self, gw: Gateway, websocket: WebSocket, user: User, commune: str,
                 camera: str, *, replay_s: int = 0) -> None:
        self.gw, self.ws, self.user = gw, websocket, user
        self.replay_s = replay_s
        self.replayed_from: datetime | None = None
        self.commune, self.camera = commune, camera
        self.fragmenter = LiveFragmenter()
        self._rights = gw.notifier.subscribe(user.id, user.communes)
        self._state_sent: str | None = None
        self._mask_version: int | None = None
        self._order = FrameOrder()

    async def run(self) -> None:
        js = self.gw.rt.require_js()
        names = self.gw.rt.names
        start = datetime.now(UTC) - timedelta(seconds=BACKLOG_S + self.replay_s)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME,
                                opt_start_time=start,
                                ack_policy=AckPolicy.NONE, inactive_threshold=30.0,
                                mem_storage=True)
        sub = await js.pull_subscribe(names.video(self.commune, self.camera), durable=None,
                                      stream=names.video_stream, config=config)
        watcher = asyncio.create_task(self._watch_client())
        try:
            await self._send_backlog(sub)
            last_frame, last_check = time.monotonic(), time.monotonic()
            while True:
                if watcher.done():
                    watcher.result()
                try:
                    msgs = await sub.fetch(25, timeout=0.5)
                except nats.errors.TimeoutError:
                    msgs = []
                except TRANSIENT_NATS_ERRORS:
                    msgs = []
                    await asyncio.sleep(0.5)  # NATS away: never a tight loop
                for msg in msgs:
                    await self._send_frame(msg)
                    last_frame = time.monotonic()
                if msgs and self._state_sent:
                    self._state_sent = None
                    await self.ws.send_json({"type": "state", "state": "live"})
                if time.monotonic() - last_frame > QUIET_S:
                    await self._send_state(await _camera_state(self.gw, self.commune, self.camera))
                if self._rights.qsize() or time.monotonic() - last_check > RECHECK_S:
                    await self._recheck()
                    last_check = time.monotonic()
        finally:
            watcher.cancel()
            self.gw.notifier.unsubscribe(self.user.id, self._rights)
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS, nats.errors.BadSubscriptionError):
                await sub.unsubscribe()

    async def _send_backlog(self, sub: Any) -> None:
        """Recent frames up to now, then only those from the latest keyframe are sent."""
        backlog: list[Frame] = []
        while True:
            try:
                msgs = await sub.fetch(200, timeout=0.3)
            except TRANSIENT_NATS_ERRORS:
                break
            for msg in msgs:
                with contextlib.suppress(FrameMessageError):
                    backlog.append(Frame.from_message(msg.headers, msg.data))
            if msgs[-1].metadata.num_pending == 0:
                break
        if self.replay_s:
            since = time.time_ns() - self.replay_s * 1_000_000_000
            first = start_at_keyframe_before(backlog, since)
            if first:
                self.replayed_from = datetime.fromtimestamp(first[0].capture_time_ns / 1e9, UTC)
        else:
            first = start_at_last_keyframe(backlog)
        for frame in first:
            if not self._order.admit(frame.owner_epoch, frame.capture_time_ns):
                continue
            await self._send_bytes(self.fragmenter.feed(frame))
            self._mask_version = frame.mask_version

    async def _send_frame(self, msg: Any) -> None:
        try:
            frame = Frame.from_message(msg.headers, msg.data)
        except FrameMessageError as exc:
            log.warning("live_frame_malformed", commune=self.commune, camera=self.camera,
                        error=str(exc))
            return
        if not self._order.admit(frame.owner_epoch, frame.capture_time_ns):
            return  # a stale masking owner's, or a redelivery behind newer frames
        if self._mask_version is not None and frame.mask_version != self._mask_version:
            # A new approved version applies from this keyframe: say so before its image.
            await self.ws.send_json({"type": "mask_version", "mask_version": frame.mask_version,
                                     "capture_time_ns": frame.capture_time_ns})
        self._mask_version = frame.mask_version
        await self._send_bytes(self.fragmenter.feed(frame))

    async def _send_bytes(self, data: bytes) -> None:
        started = self.fragmenter.opened
        if started is not None:
            # Media time 0 of this init segment is this capture time (UTC): the client shows
            # the wall-clock time of every image (R36).
            await self.ws.send_json({"type": "init", "capture_time_ns": started.capture_time_ns,
                                     "width": started.width, "height": started.height,
                                     "mask_version": started.mask_version})
        if data:
            await self.ws.send_bytes(data)

    async def _send_state(self, state: str) -> None:
        if state != self._state_sent:
            self._state_sent = state
            await self.ws.send_json({"type": "state", "state": state})

    async def _recheck(self) -> None:
        while not self._rights.empty():
            message = self._rights.get_nowait()
            if message.get("type") == "session_ended":
                raise ViewClosed(message.get("reason", "your session ended"), 4401)
        token = self.ws.cookies.get("vigie_session")
        current = await session_user(self.gw.pool, token) if token else None
        if current is None:
            raise ViewClosed("your session has ended", 4401)
        # Decided on the account as it is now: roles or communes taken away close the view.
        decision, _ = await _decision(self.gw, current, self.commune, self.camera)
        if not decision:
            raise ViewClosed(decision.reason)

    async def _watch_client(self) -> None:
        """The client sends nothing; reading is how a disconnect is noticed at once."""
        while True:
            await self.ws.receive_text()
