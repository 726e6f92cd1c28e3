"""`vigie status`: each service's health and readiness, each camera's state, for people and scripts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import httpx

CAMERAS_SQL = """
SELECT c.id AS camera_id, c.commune || '/' || c.slug AS id, c.state, c.device_id,
       coalesce(h.online, false) AS online, coalesce(h.ingest_status, 'unknown') AS ingest_status,
       h.masking_ok, h.mask_version, h.width, h.height, h.codec, h.below_norms,
       ca.authorisation_state AS authorisation, ca.reference AS authorisation_ref,
       ca.valid_until AS authorisation_until,
       extract(epoch FROM now() - h.last_frame_at) AS last_frame_age_s,
       (SELECT count(*) FROM segments s
         WHERE s.camera_id = c.id AND s.created_at > now() - interval '5 minutes') AS segments_last_5m
FROM cameras c LEFT JOIN camera_health h ON h.camera_id = c.id
JOIN camera_authorisation ca ON ca.camera_id = c.id
ORDER BY c.commune, c.slug
"""


OWNED_BY = ("ingest", "masking", "recorder")
# The owner of each camera per service, if that claimant is alive (a masking worker `masking-2/w0`
# is shown as its replica, `masking-2`).
OWNERS_SQL = """
SELECT o.camera_id, o.service, split_part(o.owner, '/', 1) AS replica, o.epoch
FROM camera_owners o JOIN replicas r ON r.service = o.service AND r.name = o.owner
WHERE r.heartbeat_at > now() - interval '15 seconds'
"""


async def _owners(conn: asyncpg.Connection) -> dict[int, dict[str, dict[str, Any]]]:
    """Per camera: its owner per service and the epoch of that ownership."""
    owners: dict[int, dict[str, dict[str, Any]]] = {}
    for row in await conn.fetch(OWNERS_SQL):
        cam = owners.setdefault(row["camera_id"], {"owners": dict.fromkeys(OWNED_BY),
                                                   "owner_epochs": dict.fromkeys(OWNED_BY)})
        cam["owners"][row["service"]] = row["replica"]
        cam["owner_epochs"][row["service"]] = row["epoch"]
    return owners


# Written by the retention service at start: does the object store apply lifecycle rules?
BACKSTOP_SQL = "SELECT lifecycle_backstop FROM retention_state WHERE bucket LIKE '%recordings'"


class StatusError(Exception):
    pass


def read_run_state(data: Path) -> dict[str, Any]:
    path = data / "run.json"
    if not path.exists():
        raise StatusError(f"no running Vigie found in {data} (start it with `make run`)")
    return dict(json.loads(path.read_text()))


async def _service_health(client: httpx.AsyncClient, port: int) -> dict[str, Any]:
    result: dict[str, Any] = {"port": port, "healthy": False, "ready": False}
    try:
        health = await client.get(f"http://127.0.0.1:{port}/healthz")
        result["healthy"] = health.status_code == 200
        ready = await client.get(f"http://127.0.0.1:{port}/readyz")
        result["ready"] = ready.status_code == 200
        result["checks"] = ready.json().get("checks", {})
    except httpx.HTTPError as exc:
        result["error"] = type(exc).__name__
    return result


async def collect(data: Path) -> dict[str, Any]:
    state = read_run_state(data)
    ports: dict[str, int] = state["ports"]["services"]
    children: dict[str, dict[str, Any]] = state.get("services", {})
    names = list(children) or list(ports)  # every replica by its name: ingest, or ingest-1…
    async with httpx.AsyncClient(timeout=3) as client:
        healths = await asyncio.gather(*(_service_health(client, ports[n]) for n in names))
    services = dict(zip(names, healths, strict=True))
    for name, info in services.items():
        child = children.get(name, {})
        info["service"] = child.get("service") or name
        info["pid"] = child.get("pid")
        info["restarts"] = child.get("restarts", 0)
    servers = {name: {"pid": pid, "alive": _alive(pid),
                      "restarts": state.get("server_restarts", {}).get(name, 0)}
               for name, pid in state.get("servers", {}).items()}
    password = (data / "postgres" / "pg-password").read_text().strip()
    dsn = f"postgresql://vigie:{password}@127.0.0.1:{state['ports']['postgres']}/vigie"
    cameras: list[dict[str, Any]] = []
    backstop: bool | None = None
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            backstop = await conn.fetchval(BACKSTOP_SQL)
            owners = await _owners(conn)
            for row in await conn.fetch(CAMERAS_SQL):
                cam = dict(row)
                cam.update(owners.get(cam.pop("camera_id")) or {
                    "owners": dict.fromkeys(OWNED_BY), "owner_epochs": dict.fromkeys(OWNED_BY)})
                age = cam.pop("last_frame_age_s")
                cam["last_frame_age_s"] = round(float(age), 1) if age is not None else None
                cameras.append(cam)
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        raise StatusError(f"database unavailable: {type(exc).__name__}") from None
    return {"web": state.get("web"), "services": services, "servers": servers,
            "cameras": cameras, "lifecycle_backstop": backstop}


def _alive(pid: int | None) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, TypeError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def render_text(status: dict[str, Any]) -> str:
    lines = [f"Web: {status['web']}", "", "SERVICE          PID      HEALTHY  READY  RESTARTS"]
    for name, s in status["services"].items():
        lines.append(f"{name:<16} {s.get('pid') or '-'!s:<8} {'yes' if s['healthy'] else 'NO':<8} "
                     f"{'yes' if s['ready'] else 'NO':<6} {s['restarts']}")
    if status.get("servers"):
        lines += ["", "SERVER           ALIVE    RESTARTS"]
        for name, srv in status["servers"].items():
            lines.append(f"{name:<16} {'yes' if srv['alive'] else 'NO':<8} {srv['restarts']}")
    backstop = {True: "yes (lifecycle rules per commune on the recordings bucket)",
                 False: "NO BACKSTOP: the object store refuses lifecycle rules, the retention "
                        "service alone erases",
                 None: "unknown (the retention service has not checked yet)"}
    lines += ["", f"Lifecycle backstop: {backstop[status.get('lifecycle_backstop')]}"]
    lines += ["", "CAMERA                          STATE          ONLINE  MASKING  LAST FRAME  "
              "SEG/5MIN  OWNERS (ingest masking recorder)"]
    for c in status["cameras"]:
        masking = {True: "ok", False: "FAILED", None: "-"}[c["masking_ok"]]
        age = f"{c['last_frame_age_s']:.1f}s" if c["last_frame_age_s"] is not None else "-"
        owners = " ".join(c["owners"][s] or "-" for s in OWNED_BY)
        lines.append(f"{c['id']:<31} {c['state']:<14} {'yes' if c['online'] else 'no':<7} "
                     f"{masking:<8} {age:<11} {c['segments_last_5m']:<9} {owners}")
    lines += _authorisation_warnings(status["cameras"])
    lines += [f"R35: {c['id']} is below the technical norms ({c['below_norms']})"
              for c in status["cameras"] if c.get("below_norms")]
    return "\n".join(lines)


def _authorisation_warnings(cameras: list[dict[str, Any]]) -> list[str]:
    """R3: cameras that film nothing for want of a valid authorisation, and orders ending within
    six months (the 6/3/1-month warnings), once per order."""
    from datetime import date

    from vigie.records.authorisations import warning_stage

    out: list[str] = []
    seen: set[str] = set()
    for c in cameras:
        if c["state"] == "disabled":
            continue
        if c["authorisation"] != "valid":
            out.append(f"{c['id']}: NO VALID AUTHORISATION ({c['authorisation']}"
                       f"{' ' + c['authorisation_ref'] if c['authorisation_ref'] else ''}): "
                       "nothing recorded or shown (R3)")
            continue
        until = c["authorisation_until"]
        key = f"{c['id'].split('/')[0]}/{c['authorisation_ref']}"
        if until and key not in seen and warning_stage(until, date.today()):
            seen.add(key)
            out.append(f"authorisation {c['authorisation_ref']} ({c['id'].split('/')[0]}) ends "
                       f"on {until}: renew it and attach its cameras to the new order")
    return (["", "Authorisations:"] + out) if out else []


def status(data: Path, *, as_json: bool) -> int:
    try:
        result = asyncio.run(collect(data.resolve()))
    except StatusError as exc:
        print(f"vigie status: {exc}")
        return 2
    print(json.dumps(result, default=str) if as_json else render_text(result))
    healthy = all(s["healthy"] for s in result["services"].values()) and \
        all(s["alive"] for s in result.get("servers", {}).values())
    return 0 if healthy else 1
