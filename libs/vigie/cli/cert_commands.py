"""`vigie certs`: the deployment's CA and its certificates (issue 25; docs/security.md). `init`
makes what a deployment needs — the CA, the servers' certificates, one client certificate per
service, an empty revocation list — and never overwrites a file; `client` issues one for a police
subscriber, `post` one for a national-police post (its OU says which: the police port takes posts'
only); `revoke` puts one on the revocation list (a lost or stolen post's). `vigie secrets init`
writes the deployment's passwords and keys, one file each (issue 35)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vigie.cli.admin_commands import CommandError, _run
from vigie.plumbing import certs
from vigie.plumbing.certs import CRL


def _ca(folder: Path) -> certs.Issued:
    if not (folder / "ca.key").exists():
        raise CommandError(f"no CA in {folder}: run `vigie certs init --out {folder}` first")
    return certs.load(folder, "ca")


async def _cmd_init(args: argparse.Namespace) -> int:
    folder = Path(args.out)
    extra = tuple(h for h in args.host.split(",") if h) if args.host else ()
    made = certs.init_folder(folder, extra_hosts=extra, ca_name=args.ca_name)
    print(f"{folder}: made {', '.join(made) or 'nothing (all there)'}. Keep ca.key offline once "
          "the certificates are issued; give each service only its own .pem/.key.")
    return 0


async def _cmd_secrets_init(args: argparse.Namespace) -> int:
    from vigie.security.secret_files import init_folder

    folder = Path(args.out)
    made = init_folder(folder)
    print(f"{folder}: made {', '.join(made) or 'nothing (all there)'}. One file per secret, "
          "mounted at /run/secrets/<name> by docker-compose.yml; keep a copy offline (the keys "
          "sign the register, the recordings and the exports).")
    return 0


async def _cmd_client(args: argparse.Namespace) -> int:
    folder = Path(args.out)
    ca = _ca(folder)
    if (folder / f"{args.name}.key").exists():
        raise CommandError(f"{folder / args.name}.key exists: a certificate is never overwritten")
    kind = certs.POST if args.certs_command == "post" else certs.SUBSCRIBER
    cert, key = certs.issue(ca, args.name, client=True, kind=kind, days=args.days).write(
        folder, args.name)
    print(f"{cert} and {key}: the {kind} certificate of {args.name}, signed by {folder}/ca.pem")
    return 0


async def _cmd_revoke(args: argparse.Namespace) -> int:
    folder = Path(args.out)
    ca = _ca(folder)
    cert = folder / f"{args.name}.pem"
    if not cert.exists():
        raise CommandError(f"no certificate {cert}: revoke a certificate this CA issued")
    number = certs.serial(cert.read_bytes())
    listed = certs.revoked((folder / CRL).read_bytes()) if (folder / CRL).exists() else set()
    if number in listed:
        raise CommandError(f"{args.name} is already revoked")
    (folder / CRL).write_bytes(certs.revocation_list(ca, listed | {number}))
    print(f"{args.name} (serial {number:x}) revoked: {folder / CRL} lists {len(listed) + 1}. "
          "Give it to the gateway (VIGIE_VIEWER_GATEWAY_POLICE_CLIENT_CRL) and restart it; "
          "a police subscriber is also removed from NATS (its user and password).")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("certs", help="the deployment's CA and TLS certificates")
    certs_sub = p.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    p = certs_sub.add_parser("init", help="the CA, the servers' certificates (NATS, PostgreSQL, "
                             "SeaweedFS) and one client certificate per service; skips any "
                             "that exists")
    p.add_argument("--out", required=True, help="folder (deploy/certs for Compose)")
    p.add_argument("--ca-name", default="Vigie deployment CA")
    p.add_argument("--host", help="more names the servers answer to (comma-separated)")
    p.set_defaults(func=lambda a: _run(a, _cmd_init))
    for action, helping, who in (
            ("client", "a police subscriber's client certificate (NATS events)",
             "the subscriber's NATS user"),
            ("post", "a national-police post's client certificate: the only kind the gateway's "
             "police port takes (R30)", "the post's name, recorded as the post of every "
             "session opened with it")):
        p = certs_sub.add_parser(action, help=helping)
        p.add_argument("name", help=who)
        p.add_argument("--out", required=True, help="the folder holding the CA")
        p.add_argument("--days", type=int, default=365)
        p.set_defaults(func=lambda a: _run(a, _cmd_client))
    p = certs_sub.add_parser("revoke", help="put a client certificate on the CA's revocation "
                             "list (a lost or stolen post's, R30)")
    p.add_argument("name", help="the certificate's name in the folder (NAME.pem)")
    p.add_argument("--out", required=True, help="the folder holding the CA")
    p.set_defaults(func=lambda a: _run(a, _cmd_revoke))
    p = sub.add_parser("secrets", help="the deployment's passwords and keys, one file each")
    secrets_sub = p.add_subparsers(dest="secrets_command", required=True, metavar="ACTION")
    p = secrets_sub.add_parser("init", help="write every secret missing from the folder (never "
                               "overwrites one)")
    p.add_argument("--out", required=True, help="folder (deploy/secrets for Compose)")
    p.set_defaults(func=lambda a: _run(a, _cmd_secrets_init))
