"""`vigie certs`: the deployment's CA and its certificates (issue 25; docs/security.md). `init`
makes what a deployment needs — the CA, the servers' certificates, one client certificate per
service, an empty revocation list — and never overwrites a file; `client` issues one for a police
subscriber, `post` one for a national-police post (its OU says which: the police port takes posts'
only); `revoke` puts one on the revocation list (a lost or stolen post's)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vigie import certs
from vigie.catalog import SERVICES
from vigie.cli.admin_commands import CommandError, _run

# The names the servers answer to in Compose, Kubernetes (namespace vigie) and on one machine.
SERVER_HOSTS: dict[str, tuple[str, ...]] = {
    "nats": ("nats", "nats-2", "nats-3", "nats-cluster", "nats.vigie.svc",
             *(f"nats-{i}.nats-cluster.vigie.svc" for i in range(3)), "localhost", "127.0.0.1"),
    "postgres": ("postgres", "postgres.vigie.svc", "localhost", "127.0.0.1"),
    "seaweedfs": ("seaweedfs", "seaweedfs.vigie.svc", "seaweedfs-0.seaweedfs",
                  "seaweedfs-0.seaweedfs.vigie.svc", "localhost", "127.0.0.1"),
}
CLIENTS = (*SERVICES, "init")  # `vigie init` and the operator's CLI connect as "init"
CRL = "crl.pem"  # the CA's revocation list, which the gateway's police port checks (R30)


def _ca(folder: Path) -> certs.Issued:
    if not (folder / "ca.key").exists():
        raise CommandError(f"no CA in {folder}: run `vigie certs init --out {folder}` first")
    return certs.load(folder, "ca")


async def _cmd_init(args: argparse.Namespace) -> int:
    folder = Path(args.out)
    made: list[str] = []
    if (folder / "ca.key").exists():
        ca = certs.load(folder, "ca")
    else:
        ca = certs.make_ca(args.ca_name)
        ca.write(folder, "ca")
        made.append("ca")
    extra = tuple(h for h in args.host.split(",") if h) if args.host else ()
    for server, hosts in SERVER_HOSTS.items():
        if not (folder / f"{server}.key").exists():
            certs.issue(ca, server, hosts=hosts + extra, server=True, client=server == "nats"
                        ).write(folder, server)  # NATS routes: each node is the other's client
            made.append(server)
    for client in CLIENTS:
        if not (folder / f"{client}.key").exists():
            certs.issue(ca, client, client=True, kind=certs.SERVICE).write(folder, client)
            made.append(client)
    if not (folder / CRL).exists():
        (folder / CRL).write_bytes(certs.revocation_list(ca, set()))
        made.append(CRL)
    print(f"{folder}: made {', '.join(made) or 'nothing (all there)'}. Keep ca.key offline once "
          "the certificates are issued; give each service only its own .pem/.key.")
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
