"""`vigie export create|verify|key`: requisition exports from the command line (docs/exports.md).
`verify` needs nothing but the package (and, to compare, the deployment's key fingerprint)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vigie.cli.admin_commands import CommandError, _connected, _data_option, _period, _run, cli_settings


def _export_key(data: Path):  # type: ignore[no-untyped-def]
    from vigie.security.signing import SigningKey

    key = cli_settings(data).export_key
    if key is None:
        raise CommandError("VIGIE_EXPORT_KEY is not set: exports are signed with the deployment's "
                           "export key (openssl genpkey -algorithm ed25519)")
    return SigningKey.from_pem(key.get_secret_value())


async def _export_create(args: argparse.Namespace) -> int:
    from vigie.custody.exports.create import create_export
    from vigie.custody.exports.package import Requisition
    from vigie.records.announced_keys import announce

    key = _export_key(args.data)
    requisition = Requisition(reference=args.requisition, officer=args.officer,
                              recipient=args.recipient, medium=args.medium, reason=args.reason,
                              created_by=args.by)
    async with _connected(args.data) as (pool, store, buckets):
        await announce(pool, key, purpose="export", service=f"cli:{args.by}")
        result = await create_export(pool, store, buckets, key=key, cameras=args.camera,
                                     start=_period(args.start), end=_period(args.end),
                                     requisition=requisition, out_dir=args.out,
                                     approved_by=args.approved_by)
    if args.json:
        print(json.dumps({"export_id": result.export_id, "folder": str(result.folder),
                          "zip": str(result.archive), "manifest_sha256": result.manifest_sha256,
                          "holds": result.hold_ids, "gaps": result.gaps}))
        return 0
    print(result.folder)
    print(f"  ZIP {result.archive}")
    print(f"  manifest.json SHA-256 {result.manifest_sha256}")
    print(f"  holds {', '.join(map(str, result.hold_ids))} (judicial requisition, kept past "
          "retention until released)")
    if result.gaps:
        print(f"  {result.gaps} part(s) of the period have no images: listed in the package")
    return 0


def _export_verify(args: argparse.Namespace) -> int:
    from vigie.custody.exports.verify import verify_package
    from vigie.security.signing import fingerprint

    trusted = args.fingerprint
    if args.public_key is not None:
        try:
            trusted = fingerprint(args.public_key.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            print(f"{args.public_key}: not a readable public key ({exc})", file=sys.stderr)
            return 2
    verdict = verify_package(args.package, trusted_fingerprint=trusted)
    if verdict.ok:
        print(f"{args.package}: {verdict.files} files, exactly those the signed manifest lists, "
              f"every SHA-256 and the signatures hold (key {verdict.fingerprint}); "
              f"{verdict.onvif} ONVIF file(s) signed; {verdict.chained} segment(s) checked "
              "against the recorder's signed chain")
        for note in verdict.notes:
            print(f"  note: {note}")
        if verdict.anchored:
            print("  The key is the deployment's (the fingerprint given): the package is what "
                  "the deployment signed.")
            return 0
        # Intact as signed, by whoever holds the key inside it: anyone can re-sign a package.
        print(f"NOT TIED TO THE DEPLOYMENT: nothing here says who holds the key "
              f"{verdict.fingerprint}. Give the fingerprint the deployment publishes "
              "(--fingerprint, GET /api/keys, its register) or its public key (--public-key).",
              file=sys.stderr)
        return 3
    print(f"{args.package}: {verdict.problems[0]}", file=sys.stderr)
    for more in verdict.problems[1:]:
        print(f"  also: {more}", file=sys.stderr)
    return 1


async def _export_key_show(args: argparse.Namespace) -> int:
    print(_export_key(args.data).fingerprint())
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    export = sub.add_parser("export", help="requisition exports: signed evidence packages (R17)")
    export_sub = export.add_subparsers(dest="export_command", required=True, metavar="ACTION")
    p = export_sub.add_parser("create", help="hold what a requisition covers and build its package")
    p.add_argument("--camera", action="append", required=True, metavar="COMMUNE/CAMERA")
    p.add_argument("--from", dest="start", required=True, help="ISO 8601 with time zone")
    p.add_argument("--to", dest="end", required=True, help="ISO 8601 with time zone, or now")
    p.add_argument("--requisition", required=True, help="PV or procedure number")
    p.add_argument("--officer", required=True, help="the OPJ and their service")
    p.add_argument("--recipient", required=True)
    p.add_argument("--medium", required=True, help="the medium or the transfer's id")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", required=True, help="who makes the export (name, agent number)")
    p.add_argument("--approved-by", help="a second person, for an export over the camera-hours "
                   "limit (docs/retention.md)")
    p.add_argument("--out", type=Path, default=Path("exports"), help="where to write the package")
    p.add_argument("--json", action="store_true")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _export_create))

    p = export_sub.add_parser("verify", help="check a package (folder or ZIP): exit 1 naming the "
                              "first file that does not hold; exit 3 when it is intact but no "
                              "fingerprint ties it to the deployment")
    p.add_argument("package", type=Path)
    p.add_argument("--fingerprint", help="the deployment's export key fingerprint (SHA256:…)")
    p.add_argument("--public-key", type=Path, help="the deployment's published public key (PEM), "
                   "instead of its fingerprint")
    p.set_defaults(func=_export_verify)

    p = export_sub.add_parser("key", help="the export key's fingerprint, to publish")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _export_key_show))
