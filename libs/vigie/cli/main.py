"""`vigie`: one command for people and scripts (DESIGN.md "The vigie command")."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from vigie.plumbing.catalog import SERVICES, module_name
from vigie.plumbing.settings import secrets_from_files

Command = Callable[[argparse.Namespace], int]


def _cmd_service(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"{module_name(args.name)}.__main__")
    return int(module.main())


def _cmd_init(args: argparse.Namespace) -> int:
    import os

    from vigie.operations.provision import provision
    from vigie.plumbing.bus.streams import StreamLimits
    from vigie.plumbing.db.roles import MONITOR_PASSWORD_ENV, SERVICES, password_env
    from vigie.plumbing.log import configure_logging
    from vigie.plumbing.settings import CommonSettings, is_placeholder_secret, load_settings

    common = load_settings(CommonSettings)
    configure_logging(level=common.log_level, fmt=common.log_format, service="init")
    # Each service's database role whose password is given (Compose and Kubernetes give all).
    passwords = {s: os.environ[password_env(s)] for s in SERVICES if os.environ.get(password_env(s))}
    monitor_password = os.environ.get(MONITOR_PASSWORD_ENV) or None
    placeholders = [password_env(s) for s, pw in passwords.items() if is_placeholder_secret(pw)]
    if monitor_password and is_placeholder_secret(monitor_password):
        placeholders.append(MONITOR_PASSWORD_ENV)
    if placeholders and not common.local_mode:  # issue 34: CHANGE-ME copied from an example
        print(f"vigie init: {', '.join(placeholders)} is a placeholder or well-known password: "
              "set a real one (openssl rand -hex 24)", file=sys.stderr)
        return 2
    result = asyncio.run(provision(common, load_settings(StreamLimits), role_passwords=passwords,
                                   monitor_password=monitor_password))
    print(json.dumps(result))
    return 0


def _cmd_nats_config(args: argparse.Namespace) -> int:
    from vigie.plumbing.bus.permissions import ServerTls, all_users, render_server_config
    from vigie.plumbing.bus.subjects import BusNames

    externals: dict[str, list[str]] = {}
    for spec in args.external:
        user, _, communes = spec.partition("=")
        externals[user] = [c for c in communes.split(",") if c]
    passwords = {
        u: f"$VIGIE_NATS_PASSWORD_{u.upper().replace('-', '_')}" for u in all_users(externals)
    }
    try:
        config = render_server_config(
            names=BusNames(),
            passwords=passwords,
            externals=externals,
            host="0.0.0.0",
            port=4222,
            monitor_port=8222,
            monitor_host=args.monitor_host,
            store_dir=args.store_dir,
            server_name=args.server_name,
            cluster_port=6222 if args.route else None,
            routes=args.route,
            tls=ServerTls(f"{args.tls_dir}/nats.pem", f"{args.tls_dir}/nats.key",
                          f"{args.tls_dir}/ca.pem") if args.tls_dir else None,
        )
    except ValueError as exc:  # a subscriber's name or communes that cannot be subjects
        print(f"vigie nats-config: {exc}", file=sys.stderr)
        return 2
    print(config, end="")
    return 0


def _cmd_s3_config(args: argparse.Namespace) -> int:
    """The object store's identity file (SeaweedFS `-s3.config`), from the keys in the
    environment; with --minio-policies, each service's policy as a JSON file for `mc`."""
    import json
    import os
    import sys

    from vigie.plumbing.catalog import SERVICES
    from vigie.plumbing.settings import is_placeholder_secret
    from vigie.plumbing.storage.identities import Keys, identity_name, key_env, policy, seaweedfs_config

    def keys(access_var: str, secret_var: str) -> Keys | None:
        access, secret = os.environ.get(access_var, ""), os.environ.get(secret_var, "")
        return Keys(access, secret) if access and secret else None

    admin = keys("VIGIE_S3_ACCESS_KEY", "VIGIE_S3_SECRET_KEY")
    services = {s: keys(*key_env(s)) for s in SERVICES}
    missing = ([] if admin else ["VIGIE_S3_ACCESS_KEY/VIGIE_S3_SECRET_KEY"]) + [
        "/".join(key_env(s)) for s, k in services.items() if k is None]
    if missing:
        print(f"vigie s3-config: set {', '.join(missing)}", file=sys.stderr)
        return 2
    assert admin is not None
    weak = (["VIGIE_S3_SECRET_KEY"] if is_placeholder_secret(admin.secret_key) else []) + [
        key_env(s)[1] for s, k in services.items() if k and is_placeholder_secret(k.secret_key)]
    if weak:  # issue 34: an identity file is never written with an example's placeholder
        print(f"vigie s3-config: {', '.join(weak)} is a placeholder or well-known secret: set a "
              "real one (openssl rand -hex 24)", file=sys.stderr)
        return 2
    text = json.dumps(seaweedfs_config(admin, {s: k for s, k in services.items() if k}),
                      indent=2) + "\n"
    if args.output:
        out = Path(args.output)
        out.touch(mode=0o600)
        out.chmod(0o600)  # it holds every service's secret key
        out.write_text(text, encoding="utf-8")
        if args.owner:  # the object store's user reads it (SeaweedFS's image: uid 1000)
            uid, _, gid = args.owner.partition(":")
            os.chown(out, int(uid), int(gid or uid))
    else:
        print(text, end="")
    if args.minio_policies:
        folder = Path(args.minio_policies)
        folder.mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            (folder / f"{identity_name(service)}.json").write_text(
                json.dumps(policy(service), indent=2) + "\n", encoding="utf-8")
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    """Dump the database into --out and prune old dumps; with --every-hours, forever (the
    Compose and Kubernetes schedules)."""
    import os
    import sys
    import time

    from vigie.operations.backup import (
        BackupError,
        OffsiteSettings,
        copy_offsite,
        dump,
        encrypt,
        prune,
        recipients_from,
    )
    from vigie.plumbing.settings import dsn_with_password, load_settings

    dsn = os.environ.get("VIGIE_POSTGRES_DSN")
    if not dsn:
        print("vigie backup: set VIGIE_POSTGRES_DSN (the tables' owner)", file=sys.stderr)
        return 2
    if password := os.environ.get("VIGIE_POSTGRES_PASSWORD"):
        try:
            dsn = dsn_with_password(dsn, password)
        except ValueError as exc:
            print(f"vigie backup: {exc}", file=sys.stderr)
            return 2
    schema = os.environ.get("VIGIE_POSTGRES_SCHEMA") or None
    offsite = load_settings(OffsiteSettings)
    try:
        recipients = recipients_from(os.environ.get("VIGIE_BACKUP_RECIPIENTS", ""))
    except BackupError as exc:
        print(f"vigie backup: {exc}", file=sys.stderr)
        return 2
    if offsite.endpoint and not recipients:
        # R38: another site's bucket never receives the database in clear.
        print("vigie backup: VIGIE_BACKUP_S3_ENDPOINT is set but not VIGIE_BACKUP_RECIPIENTS: "
              "dumps leave this host only encrypted (an age public key, age1…; docs/deploy.md)",
              file=sys.stderr)
        return 2
    if not recipients:
        print("vigie backup: warning: VIGIE_BACKUP_RECIPIENTS is not set, the dumps are kept "
              "in clear on this host", file=sys.stderr, flush=True)
    while True:
        try:
            prune(Path(args.out), keep_days=args.keep_days)  # refuses a bad --keep-days first
            path = dump(dsn, Path(args.out), schema=schema)
            if recipients:
                path = encrypt(path, recipients)
            gone = prune(Path(args.out), keep_days=args.keep_days)
            print(f"{path} ({path.stat().st_size} bytes); {len(gone)} older than "
                  f"{args.keep_days} days removed", flush=True)
            if (store := offsite.store()) is not None:
                remote_gone = asyncio.run(copy_offsite(store, offsite.bucket, path,
                                                       keep_days=args.keep_days))
                print(f"copied off the host to {offsite.endpoint}/{offsite.bucket}/{path.name}; "
                      f"{len(remote_gone)} older there removed", flush=True)
        except BackupError as exc:
            print(f"vigie backup: {exc}", file=sys.stderr)
            if not args.every_hours:
                return 1
        if not args.every_hours:
            return 0
        time.sleep(args.every_hours * 3600)


def _cmd_nats_exporter(args: argparse.Namespace) -> int:
    from vigie.plumbing.bus.monitoring import serve

    host, _, port = args.listen.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        print(f"vigie nats-exporter: --listen wants HOST:PORT, not {args.listen!r}",
              file=sys.stderr)
        return 2
    bad = [u for u in args.monitor if not u.startswith(("http://", "https://"))]
    if bad:
        print(f"vigie nats-exporter: a monitoring URL starts with http:// or https://: {bad}",
              file=sys.stderr)
        return 2
    return serve(args.monitor or ["http://127.0.0.1:8222"], host or "0.0.0.0", int(port),
                 give_up_after_s=args.give_up_after_s)


def _cmd_sizing(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vigie.operations.sizing import CameraGroup, Inputs, compose_scale, kubernetes_overlay, size, table

    try:
        inputs = Inputs(groups=[CameraGroup.parse(g) for g in args.cameras],
                        hours_per_day=args.hours_per_day, retention_days=args.retention_days,
                        outage_hours=args.outage_hours, headroom=args.headroom,
                        live_panes=args.live_panes)
    except ValueError as exc:
        print(f"vigie sizing: {exc}", file=sys.stderr)
        return 2
    if not 0 < inputs.hours_per_day <= 24 or not 1 <= inputs.retention_days <= 30 \
            or inputs.outage_hours < 0 or not 0 <= inputs.headroom <= 2 or inputs.live_panes < 0:
        print("vigie sizing: hours a day 1–24, retention 1–30 days (R4), outage ≥ 0 h, "
              "headroom 0–2, live panes ≥ 0", file=sys.stderr)
        return 2
    sizing = size(inputs)
    print(table(inputs, sizing), end="")
    print(f"Compose: docker compose up -d {compose_scale(sizing)}")
    if args.overlay:
        folder = Path(args.overlay)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in kubernetes_overlay(sizing, base=args.base).items():
            (folder / name).write_text(text)
        print(f"Kubernetes: kubectl apply -k {folder}")
    return 0


def _cmd_asyncapi(args: argparse.Namespace) -> int:
    from vigie.plumbing.bus.asyncapi import render_document

    text = render_document()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


def _cmd_mask_file(args: argparse.Namespace) -> int:
    from vigie.media.encoder import EncoderOptions
    from vigie.media.maskfile import MaskFileError, mask_file
    from vigie.media.masks import MaskDocument, MaskError

    try:
        try:
            text = Path(args.masks).read_text(encoding="utf-8")
        except OSError as exc:
            raise MaskFileError(f"{args.masks}: {exc.strerror}") from None
        document = MaskDocument.parse(text)
        options = EncoderOptions(preset=args.preset, crf=args.crf, tune=None)
        result = mask_file(document, Path(args.input), Path(args.output), options)
    except (MaskFileError, MaskError) as exc:
        print(f"vigie mask-file: {exc}", file=sys.stderr)
        return 2
    print(f"{result.frames_out} frames ({result.width}x{result.height}) written to {args.output} "
          f"with mask version {document.version}")
    return 0


def _cmd_redact_file(args: argparse.Namespace) -> int:
    from vigie.custody.redaction.keep import KeepError, KeepTrack
    from vigie.custody.redaction.redact import RedactError, redact_file

    try:
        keep = KeepTrack.load(Path(args.keep))
        result = redact_file(keep, Path(args.input), Path(args.output), assist=args.assist)
    except (KeepError, RedactError) as exc:
        print(f"vigie redact-file: {exc}", file=sys.stderr)
        return 2
    print(f"{result.frames} frames ({result.width}x{result.height}) written to {args.output}: "
          f"blur block {result.block} px, requester's box on {result.kept_frames} frames"
          + (f", {result.proposed} proposed box(es) blurred inside it" if args.assist else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigie",
        description="Vigie: video protection for communes, privacy masks burned in.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("service", help="run one service (settings from the environment)")
    p.add_argument("name", choices=SERVICES)
    p.set_defaults(func=_cmd_service)

    p = sub.add_parser("init", help="apply migrations, create streams and buckets (idempotent)")
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser("sizing", help="cores, NATS store, object store and bandwidth for a "
                       "set of cameras, from the benches' measured costs; the matching "
                       "Kubernetes overlay and Compose scale")
    p.add_argument("cameras", nargs="+", metavar="COUNTxWxH[@FPS][:CODEC[:MBIT/S]]",
                   help="a group of alike cameras, e.g. 45x1920x1080@25:h264:4")
    p.add_argument("--hours-per-day", type=float, default=24.0)
    p.add_argument("--retention-days", type=int, default=30, help="1–30 (R4)")
    p.add_argument("--outage-hours", type=float, default=2.0,
                   help="a recorder or storage outage VIDEO must keep every frame through")
    p.add_argument("--headroom", type=float, default=0.3, help="0.3: 30 %% above the measured")
    p.add_argument("--live-panes", type=int, default=16, help="panes watched at once")
    p.add_argument("--overlay", metavar="DIR", help="write a kustomize overlay of deploy/k8s")
    p.add_argument("--base", default="../../k8s", help="the overlay's path to deploy/k8s")
    p.set_defaults(func=_cmd_sizing)

    p = sub.add_parser("nats-config", help="print the nats-server configuration for production")
    p.add_argument("--external", action="append", default=[], metavar="USER=COMMUNE[,COMMUNE]",
                   help="a read-only events subscriber limited to its communes")
    p.add_argument("--store-dir", default="/data/jetstream", help="JetStream storage folder")
    p.add_argument("--route", action="append", default=[], metavar="URL",
                   help="a cluster peer (nats-route://host:6222), once per node: a clustered node")
    p.add_argument("--server-name", default=None,
                   help="the node's name, or $VAR to take it from the environment (a cluster)")
    p.add_argument("--monitor-host", default=None, metavar="ADDRESS",
                   help="where the unauthenticated monitoring port (8222) listens; 127.0.0.1 "
                   "keeps it inside the container (Compose); default: with the client port")
    p.add_argument("--tls-dir", default=None, metavar="DIR",
                   help="TLS for clients and routes, client certificates required: DIR holds "
                   "nats.pem, nats.key and ca.pem (`vigie certs init`)")
    p.set_defaults(func=_cmd_nats_config)

    p = sub.add_parser("nats-exporter", help="serve Prometheus metrics of nats-servers read from "
                       "their monitoring ports (docs/operations.md)")
    p.add_argument("--monitor", action="append", default=[], metavar="URL",
                   help="a nats-server's monitoring URL, once per server "
                   "(default http://127.0.0.1:8222)")
    p.add_argument("--listen", default="0.0.0.0:7777", metavar="HOST:PORT",
                   help="where /metrics is served (default 0.0.0.0:7777)")
    p.add_argument("--give-up-after-s", type=float, default=None, metavar="SECONDS",
                   help="exit 1 when no server has answered for that long (Compose: the exporter "
                   "shares the nats container's network and must restart with it)")
    p.set_defaults(func=_cmd_nats_exporter)

    p = sub.add_parser("s3-config", help="write the object store's identity file: one "
                       "identity and policy per service (keys from the environment)")
    p.add_argument("--output", "-o", help="write to this file (mode 0600) instead of stdout")
    p.add_argument("--owner", metavar="UID[:GID]", help="give the file to this user")
    p.add_argument("--minio-policies", metavar="DIR",
                   help="also write each service's IAM policy as DIR/vigie-<service>.json")
    p.set_defaults(func=_cmd_s3_config)

    p = sub.add_parser("backup", help="dump the database (no footage is in it) and remove "
                       "dumps older than --keep-days")
    p.add_argument("--out", required=True, help="the folder of the dumps (pg_restore reads them)")
    p.add_argument("--keep-days", type=int, default=30, help="1 to 30 (R4: the legal maximum)")
    p.add_argument("--every-hours", type=float, default=None,
                   help="run forever, a dump every so many hours")
    p.set_defaults(func=_cmd_backup)

    p = sub.add_parser("asyncapi", help="print the AsyncAPI document of Vigie's events")
    p.add_argument("--output", "-o", help="write to this file instead of standard output")
    p.set_defaults(func=_cmd_asyncapi)

    p = sub.add_parser("mask-file", help="apply a mask document to a video file (H.264 MP4 out)")
    p.add_argument("--masks", required=True, help="mask document (JSON, DESIGN.md)")
    p.add_argument("--preset", default="veryfast", help="libx264 preset")
    p.add_argument("--crf", type=int, default=23, help="libx264 constant rate factor")
    p.add_argument("input", help="any video FFmpeg decodes")
    p.add_argument("output", help="H.264 MP4 to write")
    p.set_defaults(func=_cmd_mask_file)

    p = sub.add_parser("redact-file", help="inverse redaction of a video file for a right-of-"
                       "access copy: all blurred but the requester's box (R22)")
    p.add_argument("--keep", required=True,
                   help='KEEP.json: [{"t": seconds, "box": [x, y, w, h]}, …] (interpolated)')
    p.add_argument("--assist", action="store_true",
                   help="blur faces and moving vehicles the detectors find inside the box too")
    p.add_argument("input", help="any video FFmpeg decodes")
    p.add_argument("output", help="H.264 MP4 to write")
    p.set_defaults(func=_cmd_redact_file)

    from vigie.cli import (
        admin_commands,
        cert_commands,
        export_commands,
        local_commands,
        subscriber_commands,
    )

    local_commands.register(sub)
    cert_commands.register(sub)
    admin_commands.register(sub)
    export_commands.register(sub)
    subscriber_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Command = args.func
    secrets_from_files()  # VIGIE_<NAME>_FILE: the deployment's secrets, mounted as files
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
