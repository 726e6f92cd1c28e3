"""`vigie hold …` and `vigie commune …`: operations on the server, for the people who run it.

Settings come from the environment (VIGIE_…) as for the services; without them, from the embedded
default running in `--data` (what `make run` started). A refused request exits 2 with its reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from vigie.plumbing.refusals import Refusal
from vigie.records.legal_time import DEFAULT_TIME_ZONE


class CommandError(Refusal):
    """Refused: the message says why (exit 2)."""

    domain = "command"


def cli_settings(data: Path):  # type: ignore[no-untyped-def]
    from vigie.plumbing.settings import CommonSettings, load_settings

    if os.environ.get("VIGIE_POSTGRES_DSN"):
        return load_settings(CommonSettings)
    run_state, secrets = data / "run.json", data / "secrets.json"
    if not (run_state.exists() and secrets.exists()):
        raise CommandError("no VIGIE_POSTGRES_DSN… settings in the environment and no running "
                           f"embedded default in {data} (start it with `make run`)")
    ports = json.loads(run_state.read_text())["ports"]
    sec = json.loads(secrets.read_text())
    password = (data / "postgres" / "pg-password").read_text().strip()
    pki = data / "pki"  # the provisioning user's certificate is its account (`init`)
    return CommonSettings.model_validate(dict(
        local_mode=True, nats_url=f"tls://127.0.0.1:{ports['nats']}", nats_user="admin",
        nats_tls_ca=pki / "ca.pem", nats_tls_cert=pki / "init.pem", nats_tls_key=pki / "init.key",
        postgres_dsn=f"postgresql://vigie:{password}@127.0.0.1:{ports['postgres']}/vigie",
        s3_endpoint=f"127.0.0.1:{ports['s3']}", s3_access_key=sec["s3_access_key"],
        s3_secret_key=sec["s3_secret_key"], register_key=sec.get("register_key"),
        register_signing_key=sec.get("register_signing_key"), export_key=sec.get("export_key"),
        totp_key=sec.get("totp_key")))


@asynccontextmanager
async def _connected(data: Path) -> AsyncIterator[tuple[Any, Any, Any]]:
    from vigie.plumbing.db.pool import pool_from_settings
    from vigie.plumbing.storage.objects import Buckets, ObjectStore

    common = cli_settings(data)
    pool = await pool_from_settings(common, max_size=2)
    try:
        yield pool, ObjectStore.from_settings(common), Buckets.with_prefix(common.bucket_prefix)
    finally:
        await pool.close()


def _run(args: argparse.Namespace,
         work: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> int:
    from vigie.plumbing.log import configure_logging
    from vigie.plumbing.settings import SettingsError
    from vigie.security.signing import SigningKeyError

    configure_logging(level="warning", fmt="console", service="cli")  # on stderr: stdout is output
    try:
        return asyncio.run(work(args))
    except (Refusal, SettingsError, SigningKeyError) as exc:  # every domain's refusal, once
        print(f"vigie {args.command}: {exc}", file=sys.stderr)
        return 2


def _period(value: str) -> datetime:
    if value == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{value!r} is not a date and time (2026-03-14T08:00+01:00, or now)") from None
    if moment.tzinfo is None:
        raise CommandError(f"{value!r} has no time zone: write it as 2026-03-14T08:00+01:00")
    return moment


async def _hold_create(args: argparse.Namespace) -> int:
    from vigie.custody.holds import SECOND_APPROVAL_CAMERA_HOURS, HoldRequest, create_hold

    request = HoldRequest.parse(dict(
        kind=args.kind, reference=args.reference, commune=args.commune,
        cameras=[c for spec in args.camera for c in spec.split(",") if c],
        period_start=_period(args.start), period_end=_period(args.end), requested_by=args.by,
        reason=args.reason, review_on=args.review))
    async with _connected(args.data) as (pool, store, buckets):
        report = await create_hold(pool, store, recordings=buckets.recordings,
                                   holds=buckets.holds, request=request,
                                   approved_by=args.approved_by)
        kept = ("under legal hold" if await store.object_lock(buckets.holds)
                else "(no object lock on this store)")
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0
    print(f"Hold {report.hold_id} registered ({request.kind}, {request.reference}).")
    if report.pending:
        print(f"  It covers more than {SECOND_APPROVAL_CAMERA_HOURS:g} camera-hours: it keeps and "
              f"copies nothing until someone other than {request.requested_by} approves it "
              f"(vigie hold approve {report.hold_id} --by NAME).")
        return 0
    for c in report.coverage:
        print(f"  {request.commune}/{c.camera}: {c.copied} segments copied {kept} "
              f"({c.size_bytes / 2**20:.1f} MiB)")
        for m in c.missing:
            why = ("erased before the hold (see the deletions in the register)" if m.why == "erased"
                   else "not recorded (camera offline or not yet installed)")
            print(f"    missing {m.start:%Y-%m-%d %H:%M:%S} → {m.end:%Y-%m-%d %H:%M:%S} UTC: {why}")
    if not report.complete:
        print("  The hold does not cover the whole period: say so in the reply to the requester.")
    return 0


async def _hold_approve(args: argparse.Namespace) -> int:
    from vigie.custody.holds import approve_hold, copy_covered

    async with _connected(args.data) as (pool, store, buckets):
        communes = tuple(r["slug"] for r in await pool.fetch("SELECT slug FROM communes"))
        await approve_hold(pool, args.id, by=args.by, communes=communes)
        report = await copy_covered(pool, store, args.id, recordings=buckets.recordings,
                                    holds=buckets.holds)
    print(f"Hold {args.id} approved by {args.by}: "
          f"{sum(c.copied for c in report.coverage)} segments copied under legal hold.")
    return 0


async def _hold_copy(args: argparse.Namespace) -> int:
    from vigie.custody.holds import copy_covered

    async with _connected(args.data) as (pool, store, buckets):
        state = await pool.fetchval("SELECT state FROM holds WHERE id = $1", args.id)
        if state != "active":
            raise CommandError(f"hold {args.id} is {state or 'unknown'}: nothing to copy")
        report = await copy_covered(pool, store, args.id, recordings=buckets.recordings,
                                    holds=buckets.holds)
    print(json.dumps(report.as_dict()) if args.json else
          f"Hold {args.id}: {sum(c.copied for c in report.coverage)} segments in evidence"
          f"{'' if report.complete else ' (the period is not fully covered)'}.")
    return 0


async def _hold_release(args: argparse.Namespace) -> int:
    from vigie.custody.holds import release_hold

    async with _connected(args.data) as (pool, store, buckets):
        count = await release_hold(pool, hold_id=args.id,
                                   released_by=args.by, reason=args.reason)
    print(f"Hold {args.id} released: its {count} copies will be erased at the next sweep.")
    return 0


async def _hold_list(args: argparse.Namespace) -> int:
    from vigie.custody.holds import list_holds

    async with _connected(args.data) as (pool, _store, _buckets):
        holds = await list_holds(pool)
    if args.json:
        print(json.dumps(holds, default=str))
        return 0
    print("ID  STATE     KIND                  REFERENCE             COMMUNE        REVIEW      "
          "COPIES")
    for h in holds:
        print(f"{h['id']:<3} {h['state']:<9} {h['kind']:<21} {h['reference'][:21]:<21} "
              f"{h['commune']:<14} {h['review_on']}  {h['copies_kept']} kept, "
              f"{h['copies_erased']} erased")
    return 0


async def _commune_retention(args: argparse.Namespace) -> int:
    from vigie.records.communes import change_retention

    if not args.by.strip():
        raise CommandError("--by must name who decided the change")
    async with _connected(args.data) as (pool, _store, _buckets), pool.acquire() as conn, \
            conn.transaction():
        before = await change_retention(conn, args.commune, args.days, by=args.by,
                                        reason=args.reason or "")
    print(f"{args.commune}: retention {before} → {args.days} days; the retention service applies "
          "it (and the lifecycle rules) at its next sweep.")
    return 0


async def _commune_create(args: argparse.Namespace) -> int:
    from vigie.records.communes import NewCommune, create_commune

    if not args.by.strip():
        raise CommandError("--by must name who creates it")
    new = NewCommune(slug=args.slug, name=args.name, retention_days=args.retention_days,
                     controller=args.controller, rights_contact=args.rights_contact,
                     time_zone=args.time_zone)
    async with _connected(args.data) as (pool, _store, _buckets), pool.acquire() as conn, \
            conn.transaction():
        await create_commune(conn, new, by=args.by.strip())
    print(f"Commune {args.slug} created: recordings kept {args.retention_days} days; its "
          "subjects, storage prefix and lifecycle rule follow. Next: its administrator "
          f"(vigie user create … --role admin --commune {args.slug}), then its cameras.")
    return 0


async def _authorisation_add(args: argparse.Namespace) -> int:
    from vigie.records.authorisations import NewAuthorisation, create

    if not args.by.strip():
        raise CommandError("--by must name who records it")
    new = NewAuthorisation(
        commune=args.commune, reference=args.reference, granted_on=args.granted_on,
        valid_until=args.valid_until, purposes=args.purpose, recipients=args.recipient,
        other_recipients=args.other_recipients, retention_min_days=args.retention_min,
        retention_max_days=args.retention_max, cameras=args.camera)
    async with _connected(args.data) as (pool, _store, _buckets):
        if not await pool.fetchval("SELECT true FROM communes WHERE slug = $1", args.commune):
            raise CommandError(f"unknown commune {args.commune!r}")
        aid = await create(pool, new, by=args.by.strip())
    print(f"Authorisation {args.reference} recorded (id {aid}), valid {args.granted_on} to "
          f"{args.valid_until}; cameras attached: {', '.join(args.camera) or 'none yet'}.")
    return 0


async def _authorisation_attach(args: argparse.Namespace) -> int:
    from vigie.records.authorisations import attach

    async with _connected(args.data) as (pool, _store, _buckets):
        aid = await pool.fetchval("SELECT id FROM authorisations WHERE commune = $1 "
                                  "AND reference = $2", args.commune, args.reference)
        if aid is None:
            raise CommandError(f"no authorisation {args.reference!r} in {args.commune}")
        await attach(pool, args.commune, aid, args.camera, by=args.by.strip() or "cli")
    print(f"{', '.join(args.camera)} attached to {args.reference}.")
    return 0


async def _authorisation_list(args: argparse.Namespace) -> int:
    from vigie.records.authorisations import list_authorisations, unauthorised_cameras

    async with _connected(args.data) as (pool, _store, _buckets):
        found = {"authorisations": await list_authorisations(pool, args.commune),
                 "unauthorised": await unauthorised_cameras(pool, [args.commune])}
    print(json.dumps(found, ensure_ascii=False, indent=2, default=str))
    return 0


async def _commune_signs(args: argparse.Namespace) -> int:
    from vigie.records.road_signs import signs_and_coverage

    async with _connected(args.data) as (pool, _store, _buckets):
        found = await signs_and_coverage(pool, args.commune)
    print(json.dumps(found, ensure_ascii=False, indent=2, default=str))
    return 1 if found["flagged"] else 0


async def _commune_identity(args: argparse.Namespace) -> int:
    from vigie.records.communes import change_identity

    async with _connected(args.data) as (pool, _store, _buckets):
        async with pool.acquire() as conn, conn.transaction():
            changes = await change_identity(
                conn, args.commune, by=args.by.strip() or "cli", reason=args.reason,
                name=args.name, controller=args.controller,
                rights_contact=args.rights_contact)
    print(f"{args.commune}: " + ("; ".join(f"{k} changed" for k in changes) or "nothing changed")
          + ".")
    return 0


async def _commune_remove_sign(args: argparse.Namespace) -> int:
    from vigie.records.road_signs import remove_sign, signs_and_coverage

    async with _connected(args.data) as (pool, _store, _buckets):
        await remove_sign(pool, args.commune, args.sign, removed_on=args.on,
                          reason=args.reason, by=args.by.strip() or "cli")
        flagged = (await signs_and_coverage(pool, args.commune))["flagged"]
    print(f"Sign {args.sign} recorded as removed on {args.on}. Cameras flagged now: "
          f"{', '.join(f['camera'] for f in flagged) or 'none'}.")
    return 0


async def _commune_incidents(args: argparse.Namespace) -> int:
    from vigie.records.incidents import list_incidents

    async with _connected(args.data) as (pool, _store, _buckets):
        found = await list_incidents(pool, (args.commune,))
    print(json.dumps(found, ensure_ascii=False, indent=2, default=str))
    return 0


async def _commune_record(args: argparse.Namespace) -> int:
    from vigie.records.audit_register import Entry, record
    from vigie.records.processing_record import as_html, measures_in_force, processing_record

    async with _connected(args.data) as (pool, store, buckets):
        in_force = await measures_in_force(cli_settings(args.data), store, buckets.holds)
        found = await processing_record(pool, args.commune, in_force=in_force)
        if found is None:
            raise CommandError(f"unknown commune {args.commune!r}")
        await record(pool, Entry(actor=args.by.strip() or "cli", action="register.exported",
                                 commune=args.commune,
                                 details={"register": "processing_record",
                                          "format": "html" if args.html else "json"}))
    print(as_html(found) if args.html else json.dumps(found, ensure_ascii=False, indent=2,
                                                      default=str))
    return 0


def _witness(path: Path | None) -> list[Any]:
    """A witness's copies: JSON lines (`vigie events follow` output, or the evidence bucket's
    objects one per line); lines that are not checkpoints are skipped."""
    from vigie.records.audit_register import Checkpoint

    if path is None:
        return []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise CommandError(f"cannot read the witness file: {exc.strerror}") from None
    copies = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            data = data.get("event", data) if isinstance(data, dict) else data
            if isinstance(data, dict) and "seq" in data and "signature" in data:
                copies.append(Checkpoint.from_dict(data))
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"witness line {number} is not a checkpoint: {exc}") from None
    return copies


async def _audit_verify(args: argparse.Namespace) -> int:
    from vigie.records.announced_keys import register_keys
    from vigie.records.audit_register import verify
    from vigie.security.signing import SigningKeyError, trusted_keys

    witness = _witness(args.witness)
    try:
        pinned = trusted_keys([p.read_bytes() for p in args.public_key]) if args.public_key \
            else None
    except (OSError, ValueError, SigningKeyError) as exc:
        raise CommandError(f"--public-key: {exc}") from None
    legacy = cli_settings(args.data).register_key
    async with _connected(args.data) as (pool, _store, _buckets), pool.acquire() as conn:
        keys = pinned if pinned is not None else await register_keys(conn)
        result = await verify(conn, keys, max_age_s=args.max_age_s or None, witness=witness,
                              legacy_key=legacy.get_secret_value().encode() if legacy else None)
    if args.json:
        print(json.dumps(result.as_dict() | {"key_pinned": pinned is not None,
                                             "witness_checkpoints": len(witness)}))
    elif result.ok:
        age = result.latest_checkpoint_age_s
        print(f"The register verifies: {result.rows} rows chained, {result.checkpoints} signed "
              f"checkpoints reached, the latest {age:.0f} s old"
              f"{', ' + str(len(witness)) + ' witness copies matched' if witness else ''}; "
              f"{result.unsigned_rows} rows written since."
              if age is not None else f"The register verifies: {result.rows} rows chained.")
        if pinned is None:
            print("Note: the keys were read from the database; pin yours with --public-key.")
        if result.legacy_unverified:
            print(f"Note: {result.legacy_unverified} checkpoints of before issue 25 (HMAC) were "
                  "not checked: set VIGIE_REGISTER_KEY to check them.")
    else:
        print(f"The register does NOT verify: {result.problem} (first broken row: "
              f"{result.first_broken_id}).")
    return 0 if result.ok else 1


async def _audit_recordings(args: argparse.Namespace) -> int:
    from vigie.records.audit_register import Entry, record
    from vigie.records.recordings_register import recordings_register, to_csv

    start, end = _period(args.start), _period(args.end)
    if end <= start:
        raise CommandError("the period ends before it starts")
    async with _connected(args.data) as (pool, _, _):
        communes = args.commune or [r["slug"] for r in await pool.fetch(
            "SELECT slug FROM communes ORDER BY slug")]
        lines = await recordings_register(pool, communes, start, end)
        await record(pool, Entry(actor=args.by, action="register.exported", period_start=start,
                                 period_end=end, details={"register": "recordings",
                                                          "communes": communes,
                                                          "rows": len(lines)}))
    sys.stdout.write(to_csv(lines, french=args.format == "fr"))
    return 0


async def _audit_purge(args: argparse.Namespace) -> int:
    from vigie.records.audit_register import REGISTER_KEEP_MONTHS, purge

    low, high = REGISTER_KEEP_MONTHS
    if not low <= args.keep_months <= high:
        raise CommandError(f"--keep-months must be {low} to {high} (R15: 36 by default)")
    key = cli_settings(args.data).register_signing_key
    if key is None:
        raise CommandError("VIGIE_REGISTER_SIGNING_KEY is not set: the purge is anchored by a "
                           "checkpoint signed with the register key")
    from vigie.security.signing import SigningKey

    async with _connected(args.data) as (pool, _store, _buckets), pool.acquire() as conn:
        deleted = await purge(conn, SigningKey.from_pem(key.get_secret_value()),
                              keep_months=args.keep_months)
    print(f"{deleted} register rows older than {args.keep_months} months purged behind a signed "
          "checkpoint.")
    return 0


async def _user_create(args: argparse.Namespace) -> int:
    from vigie.records.audit_register import Entry, record
    from vigie.security.accounts import (
        ROLES,
        AccountError,
        TotpKey,
        create_user,
        generate_password,
        image_rights,
        totp_uri,
    )

    common = cli_settings(args.data)
    if common.totp_key is None and not common.local_mode:
        raise CommandError("VIGIE_TOTP_KEY is not set: run this in the gateway's container, "
                           "which holds the key that seals TOTP secrets")
    totp_key = TotpKey.from_hex(common.totp_key.get_secret_value()) if common.totp_key else None
    seeing = image_rights(args.role)
    if seeing and not args.designation_act:
        raise CommandError(f"an account with image rights ({', '.join(sorted(seeing))}) is "
                           "created on a designating act: --designation-act \"arrêté … n° …\" (R8)")
    password = args.password or generate_password()
    async with _connected(args.data) as (pool, _store, _buckets), pool.acquire() as conn, \
            conn.transaction():
        try:
            user = await create_user(
                conn, username=args.username, full_name=args.full_name, password=password,
                roles=args.role, communes=args.commune, designated_by=args.designated_by,
                designation_expires=args.expires, agent_number=args.agent_number,
                with_totp=args.totp, trained_on=args.trained_on, totp_key=totp_key,
                designation_act=args.designation_act, owner_sets_password=bool(seeing))
        except AccountError as exc:
            raise CommandError(f"{exc} (roles: {', '.join(ROLES)})") from None
        await record(conn, Entry(actor=args.designated_by, action="user.created",
                                 details={"username": args.username, "roles": args.role,
                                          "communes": args.commune,
                                          "designation_act": args.designation_act,
                                          "image_rights": sorted(seeing)}))
    print(f"User {args.username} created (roles {', '.join(args.role)}).")
    if not args.password:
        print(f"Password (shown once): {password}")
    if user.totp_secret:
        print(f"TOTP: scan {totp_uri(args.username, user.totp_secret)}")
    return 0


def _data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("var"),
                        help="data folder of the running `make run` (when no VIGIE_… settings "
                        "are set)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]

    hold = sub.add_parser("hold", help="holds: footage kept beyond retention (R18, R21)")
    hold_sub = hold.add_subparsers(dest="hold_command", required=True, metavar="ACTION")
    p = hold_sub.add_parser("create", help="register a hold and copy what it covers under legal hold")
    p.add_argument("--kind", required=True, choices=["judicial_requisition", "right_of_access"])
    p.add_argument("--reference", required=True, help="requisition or request reference")
    p.add_argument("--commune", required=True)
    p.add_argument("--camera", action="append", required=True, metavar="SLUG[,SLUG]")
    p.add_argument("--start", required=True, help="period start, ISO 8601 with time zone")
    p.add_argument("--end", required=True, help="period end, ISO 8601 with time zone, or now")
    p.add_argument("--by", required=True, help="who requests it (name, service)")
    p.add_argument("--reason", required=True)
    p.add_argument("--review", required=True, type=date.fromisoformat, help="review date YYYY-MM-DD")
    p.add_argument("--approved-by", help="a second person who approves a hold over the "
                   "camera-hours limit (otherwise it waits for `vigie hold approve`)")
    p.add_argument("--json", action="store_true")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _hold_create))

    p = hold_sub.add_parser("approve", help="a second person approves a pending hold: it is kept "
                            "and copied")
    p.add_argument("id", type=int)
    p.add_argument("--by", required=True, help="who approves (not who asked)")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _hold_approve))

    p = hold_sub.add_parser("copy", help="finish copying a hold whose creation was interrupted")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _hold_copy))

    p = hold_sub.add_parser("release", help="return a hold's copies to deletion")
    p.add_argument("id", type=int)
    p.add_argument("--by", required=True)
    p.add_argument("--reason", required=True)
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _hold_release))

    p = hold_sub.add_parser("list", help="holds with their state")
    p.add_argument("--json", action="store_true")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _hold_list))

    audit = sub.add_parser("audit", help="the register of accesses (R12–R15)")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p = audit_sub.add_parser("verify", help="check the hash chain and the signed checkpoints")
    p.add_argument("--json", action="store_true")
    p.add_argument("--public-key", type=Path, action="append", default=[],
                   help="the register key's public PEM to trust (repeat after a rotation); "
                   "default: the keys the database announces")
    p.add_argument("--witness", type=Path, help="a witness's copies of the checkpoints (JSON "
                   "lines, as `vigie events follow` prints them): cut checkpoints are detected")
    p.add_argument("--max-age-s", type=float, default=900.0,
                   help="the latest checkpoint may be this old at most (0: no bound)")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _audit_verify))
    p = audit_sub.add_parser("recordings", help="R16: the register of recordings (kept, "
                             "destroyed, held, transmitted periods per camera) as CSV")
    p.add_argument("--commune", action="append", help="one commune (repeat); default: all")
    p.add_argument("--from", dest="start", required=True, help="ISO 8601 with time zone")
    p.add_argument("--to", dest="end", required=True, help="ISO 8601 with time zone, or now")
    p.add_argument("--by", required=True, help="who asks for it (journaled)")
    p.add_argument("--format", choices=["rfc4180", "fr"], default="rfc4180")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _audit_recordings))
    p = audit_sub.add_parser("purge", help="delete whole months past the register's retention "
                             "(needs the migrations' database role)")
    p.add_argument("--keep-months", type=int,
                   default=int(os.environ.get("VIGIE_REGISTER_RETENTION_MONTHS", "36")),
                   help="the register's retention (R15; default 36, or "
                   "VIGIE_REGISTER_RETENTION_MONTHS)")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _audit_purge))

    user = sub.add_parser("user", help="named personal accounts (R8)")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    p = user_sub.add_parser("create", help="create an account (the first administrator, say)")
    p.add_argument("username")
    p.add_argument("--full-name", required=True)
    p.add_argument("--role", action="append", required=True)
    p.add_argument("--commune", action="append", default=[])
    p.add_argument("--designated-by", required=True, help="who designated the agent (R8)")
    p.add_argument("--expires", type=date.fromisoformat, help="designation expiry YYYY-MM-DD")
    p.add_argument("--agent-number", help="sworn agent's number")
    p.add_argument("--password", help="default: generated and shown once")
    p.add_argument("--totp", action="store_true", help="enrol a TOTP second factor now")
    p.add_argument("--designation-act", help="the act designating the agent (« arrêté du maire "
                   "n° … »): required for image rights (operator, supervisor, national police, "
                   "mask administrator); such an account sets its own password at first sign-in")
    p.add_argument("--trained-on", type=date.fromisoformat, help="data-protection training "
                   "YYYY-MM-DD (R11): without it, no live, playback, export or verbalisation")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _user_create))

    commune = sub.add_parser("commune", help="commune settings")
    commune_sub = commune.add_subparsers(dest="commune_command", required=True, metavar="ACTION")
    p = commune_sub.add_parser("create", help="a new commune of the deployment (issue 24)")
    p.add_argument("slug", help="lowercase, as in subjects and storage keys: palaiseau")
    p.add_argument("--name", required=True, help="as written: Palaiseau")
    p.add_argument("--retention-days", type=int, required=True, help="1 to 30 (R4)")
    p.add_argument("--controller", required=True,
                   help="the controller named in the public register: le maire de Palaiseau")
    p.add_argument("--rights-contact", required=True,
                   help="where filmed people exercise their rights (address, e-mail)")
    p.add_argument("--time-zone", default=DEFAULT_TIME_ZONE)
    p.add_argument("--by", required=True, help="who creates it (journaled)")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _commune_create))
    p = commune_sub.add_parser("record", help="R40: the record of processing, read from the "
                               "system (JSON, or --html to print)")
    p.add_argument("commune")
    p.add_argument("--html", action="store_true")
    p.add_argument("--by", default="cli", help="who asks (journaled)")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _commune_record))
    p = commune_sub.add_parser("authorisation", help="R3: record a prefectoral order (never "
                               "edited: a renewal is a new one) and attach cameras to it")
    p.add_argument("commune")
    p.add_argument("--reference", required=True, help="the order's reference")
    p.add_argument("--granted-on", type=date.fromisoformat, required=True)
    p.add_argument("--valid-until", type=date.fromisoformat, required=True,
                   help="its last day (five years at most)")
    p.add_argument("--purpose", action="append", required=True, help="CSI L251-2 (repeat)")
    p.add_argument("--recipient", action="append", required=True,
                   help="municipal_police, national_police, gendarmerie or other (repeat)")
    p.add_argument("--other-recipients", default="", help="who « other » is")
    p.add_argument("--retention-min", type=int, default=1)
    p.add_argument("--retention-max", type=int, required=True)
    p.add_argument("--camera", action="append", default=[], help="slug to attach (repeat)")
    p.add_argument("--by", required=True, help="who records it (journaled)")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _authorisation_add))
    p = commune_sub.add_parser("attach", help="attach cameras to a recorded authorisation")
    p.add_argument("commune")
    p.add_argument("reference")
    p.add_argument("--camera", action="append", required=True)
    p.add_argument("--by", required=True)
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _authorisation_attach))
    p = commune_sub.add_parser("authorisations", help="the commune's authorisations (JSON) and "
                               "its cameras without a valid one")
    p.add_argument("commune")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _authorisation_list))
    p = commune_sub.add_parser("signs", help="R26: the signs and the cameras flagged (JSON; exit "
                               "1 when a camera is flagged)")
    p.add_argument("commune")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _commune_signs))
    p = commune_sub.add_parser("remove-sign", help="R26: a sign taken down (its cameras are "
                               "flagged again unless another complete sign covers them)")
    p.add_argument("commune")
    p.add_argument("sign", type=int, help="the sign's id (vigie commune signs)")
    p.add_argument("--on", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    p.add_argument("--reason", required=True, help="damaged, moved, stolen…")
    p.add_argument("--by", required=True, help="who records it (journaled)")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _commune_remove_sign))
    p = commune_sub.add_parser("set-identity", help="R25: the name, controller or rights contact "
                               "the public register shows")
    p.add_argument("commune")
    p.add_argument("--name")
    p.add_argument("--controller", help="le maire de …")
    p.add_argument("--rights-contact", help="where filmed people exercise their rights")
    p.add_argument("--by", required=True, help="who records it (journaled)")
    p.add_argument("--reason", default="", help="e.g. the new mayor's election")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _commune_identity))
    p = commune_sub.add_parser("incidents", help="R39: declared breaches and their deadlines "
                               "(JSON)")
    p.add_argument("commune")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _commune_incidents))
    p = commune_sub.add_parser("set-retention", help="days recordings are kept (1–30, R4)")
    p.add_argument("commune")
    p.add_argument("days", type=int)
    p.add_argument("--by", required=True, help="who decided it")
    p.add_argument("--reason", default="", help="e.g. the prefectoral order's reference")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _commune_retention))
