"""The gateway's background work: hand-over switches announced once each (event, register entry,
push to open sessions). The register's head is signed by the retention service, which alone holds
the register signing key (services/retention/register_anchor.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from vigie.plumbing.aio import run_periodically
from vigie.plumbing.bus.events import HandoverSwitched, publish_event_or_log
from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS
from vigie.plumbing.log import get_logger
from vigie.records.audit_register import Entry, record
from vigie.records.authorisations import handover_allowed
from vigie.service import Runtime

from services.viewer_gateway.handover import (
    DatedException,
    HandoverState,
    ManualSwitch,
    Schedule,
    WeeklyHours,
)
from services.viewer_gateway.settings import ViewerGatewaySettings

log = get_logger(__name__)

SHARED_CHANNEL = "vigie_gateway_news"
NOTIFY_LIMIT = 7000  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more


@dataclass
class Notifier:
    """Pushes to the open sessions' event sockets and live views (rights changed, session
    ended). A commune's news (a hand-over and its reason) reaches only the sessions of that
    commune's accounts (R9).

    Several gateway replicas run behind a load balancer: what one tells is told by every one
    (`share`, over PostgreSQL's LISTEN/NOTIFY), so a switch made through one replica closes at
    once the live views another serves. Were the channel down, each view still re-decides its
    rights every second (api/live.py)."""

    queues: dict[int, set[asyncio.Queue[dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(set))
    communes: dict[int, frozenset[str]] = field(default_factory=dict)
    origin: str = field(default_factory=lambda: uuid.uuid4().hex)  # this replica, in the news
    _outbox: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(1000))

    def subscribe(self, user_id: int, communes: tuple[str, ...] | frozenset[str] = ()
                  ) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self.queues[user_id].add(queue)
        self.communes[user_id] = frozenset(communes)
        return queue

    def unsubscribe(self, user_id: int, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.queues[user_id].discard(queue)
        if not self.queues[user_id]:
            del self.queues[user_id]
            self.communes.pop(user_id, None)

    def to_user(self, user_id: int, message: dict[str, Any]) -> None:
        self._deliver({"user": user_id, "message": message})
        self._share({"user": user_id, "message": message})

    def to_commune(self, commune: str, message: dict[str, Any]) -> None:
        self._deliver({"commune": commune, "message": message})
        self._share({"commune": commune, "message": message})

    def _deliver(self, news: dict[str, Any]) -> None:
        if "user" in news:
            users = [news["user"]]
        else:
            users = [u for u, c in self.communes.items() if news["commune"] in c]
        for user_id in users:
            for queue in list(self.queues.get(user_id, ())):
                with contextlib.suppress(asyncio.QueueFull):  # a stuck client misses an update
                    queue.put_nowait(news["message"])

    def _share(self, news: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # the others fall back on their recheck
            self._outbox.put_nowait(news)

    async def share(self, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
        """Tell the other replicas what this one tells, and deliver what they tell, until
        ``stop``; a lost connection is made again."""
        while not stop.is_set():
            try:
                async with pool.acquire() as conn:
                    await conn.add_listener(SHARED_CHANNEL, self._heard)
                    try:
                        await self._send(conn, stop)
                    finally:
                        with contextlib.suppress(*DB_ERRORS):
                            await conn.remove_listener(SHARED_CHANNEL, self._heard)
            except DB_ERRORS as exc:
                log.warning("gateway_news_unavailable", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

    async def _send(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                getting = asyncio.ensure_future(self._outbox.get())
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    return
                payload = json.dumps({**getting.result(), "origin": self.origin}, default=str)
                if len(payload.encode()) >= NOTIFY_LIMIT:
                    log.warning("gateway_news_too_long", size=len(payload))
                    continue
                await conn.execute("SELECT pg_notify($1, $2)", SHARED_CHANNEL, payload)
        finally:
            stopping.cancel()

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            news = json.loads(payload)
        except ValueError:
            return
        if isinstance(news, dict) and news.get("origin") != self.origin and \
                isinstance(news.get("message"), dict) and ("user" in news or "commune" in news):
            self._deliver(news)


DB_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError)


async def load_schedule(conn: asyncpg.Connection | asyncpg.Pool, commune: str) -> Schedule:
    row = await conn.fetchrow("SELECT police_hours, time_zone FROM communes WHERE slug = $1",
                              commune)
    exceptions = await conn.fetch(
        "SELECT starts_at, ends_at, holder FROM handover_exceptions WHERE commune = $1 "
        "AND ends_at > now() - interval '1 day' ORDER BY starts_at", commune)
    return Schedule(WeeklyHours.parse(json.loads(row["police_hours"])),
                    tuple(DatedException(e["starts_at"], e["ends_at"], e["holder"])
                          for e in exceptions), row["time_zone"])


async def open_switch(conn: asyncpg.Connection | asyncpg.Pool, commune: str) -> ManualSwitch | None:
    row = await conn.fetchrow(
        "SELECT * FROM handover_switches WHERE commune = $1 AND ended_at IS NULL "
        "ORDER BY started_at DESC LIMIT 1", commune)
    if row is None:
        return None
    return ManualSwitch(row["holder"], row["started_at"], row["until"], row["reason"],
                        row["switched_by"])


async def current_state(conn: asyncpg.Connection | asyncpg.Pool, commune: str,
                        at: datetime | None = None) -> HandoverState:
    schedule = await load_schedule(conn, commune)
    state = schedule.state(at or datetime.now(UTC), await open_switch(conn, commune))
    if state.holder == "national_police" and not await handover_allowed(conn, commune):
        # R27, R28: no hand-over without an authorisation naming the national police and a
        # coordination convention; the municipal police keep the cameras (and the screen says).
        return HandoverState("municipal_police", "authorisation", None, NO_HANDOVER)
    return state


NO_HANDOVER = ("no hand-over to the national police: no valid authorisation naming them and "
               "coordination convention in the commune's hand-over profile (R27, R28)")
HANDOVER_LOCK = 0x56494732  # beside holds' CAMERA_LOCK and the register's REGISTER_LOCK


async def _lock_commune(conn: asyncpg.Connection, commune: str) -> None:
    """One hand-over decision per commune at a time, held to the commit. An advisory lock, not
    the commune's row: rows that reference the commune take key-share locks on it, and a row lock
    here would make them wait on — and deadlock with — the evaluation."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || '/' || $2))",
                       HANDOVER_LOCK, commune)


class Handover:
    """Evaluates every commune's holder; announces each change exactly once, even with several
    gateway replicas (the stored state is updated only where it differs)."""

    def __init__(self, rt: Runtime, notifier: Notifier) -> None:
        self._rt, self._notifier = rt, notifier

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._rt.require_pool()

    async def holder(self, commune: str) -> str:
        stored = await self._pool.fetchval(
            "SELECT holder FROM handover_state WHERE commune = $1", commune)
        return stored or (await current_state(self._pool, commune)).holder

    async def evaluate(self, commune: str, *, actor: str = "schedule") -> HandoverState:
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                await _lock_commune(conn, commune)
                state, changed = await self._apply(conn, commune, actor)
            if changed:
                await self._announce(commune, state)
        return state

    @contextlib.asynccontextmanager
    async def change(self, commune: str, *, actor: str) -> AsyncIterator[asyncpg.Connection]:
        """A change to what decides the holder (hours, an exception, a manual switch), made and
        evaluated in one transaction under the commune's lock: a concurrent evaluation sees all
        of it or none of it, so the switch is attributed to whoever caused it, and a stale
        evaluation never switches back."""
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                await _lock_commune(conn, commune)
                yield conn
                state, changed = await self._apply(conn, commune, actor)
            if changed:
                await self._announce(commune, state)

    async def _apply(self, conn: asyncpg.Connection, commune: str,
                     actor: str) -> tuple[HandoverState, bool]:
        state = await current_state(conn, commune)
        changed = await conn.fetchval(
            "INSERT INTO handover_state (commune, holder) VALUES ($1, $2) "
            "ON CONFLICT (commune) DO UPDATE SET holder = excluded.holder, since = now() "
            "WHERE handover_state.holder <> excluded.holder RETURNING xmax <> 0", commune,
            state.holder)
        if changed:  # an update (xmax set), not the first insert: a real switch
            await record(conn, Entry(actor=actor, action="handover.switched",
                                     commune=commune, reason=state.reason or None,
                                     details={"to": state.holder, "by": state.by,
                                              "until": state.until}))
        return state, bool(changed)

    async def _announce(self, commune: str, state: HandoverState) -> None:
        """After the commit: whoever is told re-reads a state that is already there."""
        log.info("handover_switched", commune=commune, to=state.holder, by=state.by)
        if self._rt.js is not None:
            await publish_event_or_log(self._rt.js, self._rt.names, HandoverSwitched(
                commune=commune, to=state.holder,
                by="manual" if state.by == "manual" else "schedule",
                reason=state.reason, until=state.until))
        self._notifier.to_commune(commune, {"type": "rights_changed", "commune": commune,
                               "holder": state.holder, "by": state.by,
                               "reason": state.reason})

    async def evaluate_all(self) -> None:
        for row in await self._pool.fetch("SELECT slug FROM communes ORDER BY slug"):
            await self.evaluate(row["slug"])


IDLE_PLAYBACK = timedelta(seconds=120)  # a view nobody fetched from for this long has ended


async def close_view(pool: asyncpg.Pool, view_id: uuid.UUID, *, ended_by: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        view = await conn.fetchrow(
            "UPDATE playback_views v SET closed_at = now() FROM cameras c "
            "WHERE v.id = $1 AND v.closed_at IS NULL AND c.id = v.camera_id "
            "RETURNING v.*, c.commune, c.slug", view_id)
        if view is None:
            return  # closed already (by the viewer, or by another replica's sweep)
        await record(conn, Entry(
            actor=view["username"], action="playback", commune=view["commune"],
            cameras=[f"{view['commune']}/{view['slug']}"], period_start=view["watched_start"],
            period_end=view["watched_end"], reason=f"{view['category']}: {view['reason']}",
            details={"reference": view["reference"], "post": view["post"],
                     "view": str(view_id), "opened_at": view["opened_at"],
                     "ended_by": ended_by}))


async def close_idle_views(pool: asyncpg.Pool) -> None:
    for row in await pool.fetch("SELECT id FROM playback_views WHERE closed_at IS NULL "
                                "AND last_seen_at < now() - $1::interval", IDLE_PLAYBACK):
        await close_view(pool, row["id"], ended_by="idle")


async def purge_expired(pool: asyncpg.Pool, settings: ViewerGatewaySettings) -> None:
    """Sessions ended a day ago and login failures past their window serve nothing: erased."""
    window = timedelta(seconds=settings.login_window_s)
    await pool.execute("DELETE FROM sessions WHERE expires_at < now() - interval '1 day' "
                       "OR revoked_at < now() - interval '1 day'")
    await pool.execute("DELETE FROM login_failures WHERE at < now() - $1::interval", window)
    await pool.execute("DELETE FROM login_throttle_notes WHERE noted_at < now() - $1::interval",
                       window)


async def run(*, pool: asyncpg.Pool, handover: Handover, settings: ViewerGatewaySettings,
              stop: asyncio.Event, alarm_round: Callable[[], Awaitable[None]],
              notifier: Notifier | None = None) -> None:
    async def end_idle_playback() -> None:
        await close_idle_views(pool)

    async def purge() -> None:
        await purge_expired(pool, settings)

    await asyncio.gather(
        run_periodically(stop, 30, end_idle_playback, what="playback_idle"),
        run_periodically(stop, settings.purge_interval_s, purge, what="session_purge"),
        run_periodically(stop, settings.handover_check_s, handover.evaluate_all, what="handover"),
        run_periodically(stop, settings.alarm_check_s, alarm_round, what="alarms"),
        *([notifier.share(pool, stop)] if notifier is not None else []))
