"""One database role per service, granted only what that service does (REGULATION.md R12, R38:
least privilege; issue 25). The migrations' role owns the tables; each service connects as its own
role, so a compromised ingest cannot read the users or the masks, and nobody but retention deletes a
recording. On the register (and its checkpoints) no role may do more than read and append: UPDATE,
DELETE and TRUNCATE are never granted, and the append-only triggers are a second wall no service can
disable (only the owner can). `GRANTS` is the whole policy; docs/security.md prints it and
tests/db/test_service_roles.py tries, as each role, what it must not do."""

from __future__ import annotations

import re
from collections.abc import Mapping

import asyncpg

# S: SELECT, I: INSERT, U: UPDATE, D: DELETE; S(a,b) / U(a,b): SELECT / UPDATE of those columns
# only (issue 34: no service but the gateway reads a password hash or a TOTP secret); L: may lock
# rows (SELECT … FOR UPDATE needs an UPDATE grant: given on the identity column `id` alone, which
# no UPDATE can change). Tables not named are not granted at all.
_REGISTER = {"audit_log": "SI", "audit_checkpoints": "S"}
_RUNTIME = {"replicas": "SIUD", "communes": "S", "cameras": "S"}  # every service's heartbeat
_PER_CAMERA = {**_RUNTIME, "camera_owners": "SIU"}  # the services that own cameras (leases)

GRANTS: Mapping[str, Mapping[str, str]] = {
    # RTSP sources in, raw frames out: the sources it pulls, the health it reports. No masks,
    # users, sessions, recordings.
    "ingest": {**_PER_CAMERA, "camera_sources": "S", "camera_health": "SIU"},
    # The approved masks and the authorisation in force; sets a camera back to commissioning
    # when its source changed (the cameras' triggers read communes and authorisations).
    "masking": {**_PER_CAMERA, **_REGISTER,
                "cameras": "SU(state,source_changed_at,updated_at)", "masks": "S",
                "authorisations": "S",
                "camera_authorisation": "S", "camera_health": "SIU"},
    # Stores segments and their chain; announces its signing key. Cannot delete a segment.
    "recorder": {**_PER_CAMERA, **_REGISTER, "camera_health": "S", "segments": "SI",
                 "segment_chain": "SI", "signing_keys": "SIU"},
    # The only role that deletes recordings; seals holds, exports and access copies; signs the
    # register's head; warns about authorisations.
    "retention": {**_RUNTIME, **_REGISTER, "audit_checkpoints": "SI", "segments": "SDL",
                  "segment_chain": "SI", "holds": "SIU", "hold_items": "SIU",
                  "hold_copies": "SIU",
                  "hold_cameras": "SI", "exports": "SIU", "access_requests": "SIU",
                  "access_copies": "SIU", "incidents": "SU", "authorisations": "S",
                  "authorisation_notices": "SI", "camera_authorisation": "S",
                  "retention_cursors": "SIU", "retention_state": "SIU", "signing_keys": "SIU"},
    # Offences and their stills; reads the agents' powers.
    "verbalisation": {**_RUNTIME, **_REGISTER,
                      "users": "S(username,agent_number,verbalisation_power,disabled,communes)",
                      "offences": "SIU",
                      "offence_stills": "SIU", "signing_keys": "S", "handover_state": "S"},
    # The agents' and administrators' API: reads recordings, never writes or deletes them.
    "viewer-gateway": {
        **_RUNTIME, **_REGISTER, "communes": "SIU", "cameras": "SIU", "camera_sources": "SIU",
        "camera_health": "S", "camera_owners": "S", "masks": "SIU", "segments": "S",
        "segment_chain": "S", "users": "SIU", "sessions": "SIUD", "login_failures": "SID",
        "login_throttle_notes": "SIUD", "alarms": "SIU", "bookmarks": "SI", "live_views": "SIUD",
        "handover_state": "SIU", "handover_switches": "SIU", "handover_exceptions": "SI",
        "holds": "SIU", "hold_items": "S", "hold_cameras": "SI", "hold_copies": "SI",
        "exports": "SIU",
        "access_requests": "SIU", "access_copies": "SIU", "playback_views": "SIU",
        "post_views": "SIU", "offences": "S", "offence_stills": "S", "incidents": "SIU",
        "authorisations": "SI", "authorisation_notices": "SI", "camera_authorisation": "S",
        "signs": "SIU(removed_on,removed_by,removal_reason)", "sign_cameras": "SI",
        "retention_state": "S", "signing_keys": "S"},
}
SERVICES = tuple(GRANTS)
# Functions a role may call beyond PUBLIC's: the owner's SECURITY DEFINER functions, each doing one
# narrow thing the role's grants could not (R15: the register's scheduled purge, migration 0030).
FUNCTIONS: Mapping[str, tuple[str, ...]] = {
    "retention": ("vigie_purge_register(bigint, integer)",),
}
_VERBS = {"S": "SELECT", "I": "INSERT", "U": "UPDATE", "D": "DELETE", "L": "UPDATE (id)"}
NEVER = {"audit_log": "UD", "audit_checkpoints": "UD"}  # whatever a role above says


def role_name(service: str) -> str:
    return "vigie_" + service.replace("-", "_")


def password_env(service: str) -> str:
    """Where `vigie init` finds a role's password (as VIGIE_NATS_PASSWORD_<USER> for NATS)."""
    return "VIGIE_POSTGRES_PASSWORD_" + service.upper().replace("-", "_")


_GRANT = re.compile(r"[IDL]|[SU](?:\(([a-z_]+(?:,[a-z_]+)*)\))?")


def _grants(spec: str) -> list[str]:
    """The grant letters of `spec`, one per privilege (`U(a,b)` is one)."""
    found = [m.group(0) for m in _GRANT.finditer(spec)]
    if "".join(found) != spec:
        raise ValueError(f"not a grant: {spec!r}")
    return found


def _sql(grant: str) -> str:
    if grant[1:2] == "(":
        return f"{_VERBS[grant[0]]} ({', '.join(grant[2:-1].split(','))})"
    return _VERBS[grant]


def privileges(service: str) -> dict[str, list[str]]:
    """The SQL privileges of `service`'s role, per table."""
    return {table: [_sql(g) for g in _grants(spec) if g[0] not in NEVER.get(table, "")]
            for table, spec in GRANTS[service].items()}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_service_role(conn: asyncpg.Connection, *, schema: str, service: str,
                              password: str | None, role: str | None = None) -> str:
    """Create (or update) `service`'s login role with exactly its grants on `schema`: what it had
    beyond them is revoked, so running `vigie init` again after a narrowing takes effect."""
    name = role or role_name(service)
    r, s = _ident(name), _ident(schema)
    if not await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", name):
        await conn.execute(f"CREATE ROLE {r} LOGIN NOINHERIT")
    if password is not None:
        # Utility statements take no parameters: quote the literal with PostgreSQL's own function.
        literal = await conn.fetchval("SELECT quote_literal($1)", password)
        await conn.execute(f"ALTER ROLE {r} LOGIN PASSWORD {literal}")
    async with conn.transaction():
        await conn.execute(f"GRANT USAGE ON SCHEMA {s} TO {r}")
        await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}")
        for table, verbs in privileges(service).items():
            for verb in verbs:  # a column grant cannot share a GRANT with table privileges
                await conn.execute(f"GRANT {verb} ON {s}.{_ident(table)} TO {r}")
        # Sequences hand out ids only to the tables the role may insert into.
        await conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {r}")
        await conn.execute(f"REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} FROM {r}")
        for function in FUNCTIONS.get(service, ()):
            await conn.execute(f"GRANT EXECUTE ON FUNCTION {s}.{function} TO {r}")
    return name


async def ensure_service_roles(conn: asyncpg.Connection, *, schema: str,
                               passwords: Mapping[str, str | None]) -> list[str]:
    """Every service's role whose password is given (None: keep the one it has)."""
    return [await ensure_service_role(conn, schema=schema, service=service, password=password)
            for service, password in passwords.items()]


# The metrics exporter's role (Debian's prometheus-postgres-exporter; docs/operations.md): the
# statistics views through PostgreSQL's own pg_monitor, no table of Vigie's, no personal data.
MONITOR_ROLE = "vigie_monitor"
MONITOR_PASSWORD_ENV = "VIGIE_POSTGRES_PASSWORD_MONITOR"


async def ensure_monitor_role(conn: asyncpg.Connection, *, schema: str, password: str) -> str:
    r = _ident(MONITOR_ROLE)
    if not await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", MONITOR_ROLE):
        await conn.execute(f"CREATE ROLE {r} LOGIN INHERIT")
    literal = await conn.fetchval("SELECT quote_literal($1)", password)
    async with conn.transaction():
        await conn.execute(f"ALTER ROLE {r} LOGIN INHERIT PASSWORD {literal}")
        await conn.execute(f"GRANT pg_monitor TO {r}")
        await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {_ident(schema)} FROM {r}")
    return MONITOR_ROLE


def grants_markdown() -> str:
    """The policy as the table docs/security.md shows (a test keeps them the same)."""
    tables = sorted({t for grants in GRANTS.values() for t in grants})
    head = "| table | " + " | ".join(role_name(s) for s in SERVICES) + " |"
    rows = [head, "|---" * (len(SERVICES) + 1) + "|"]
    for table in tables:
        cells = ["".join(g for g in _grants(GRANTS[s].get(table, ""))
                         if g[0] not in NEVER.get(table, "")) or "—" for s in SERVICES]
        rows.append(f"| `{table}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)
