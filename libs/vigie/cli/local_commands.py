"""`vigie run` and `vigie status`: the embedded default."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_run(args: argparse.Namespace) -> int:
    from vigie.local.supervisor import default_footage, run
    from vigie.plumbing.log import configure_logging

    configure_logging(level="info", fmt="console", service="supervisor")
    footage = Path(args.footage) if args.footage else default_footage()
    return run(Path(args.data), port_base=args.port_base, http_port=args.http_port, footage=footage,
               replicas=args.replicas, nats_cluster=args.nats_cluster)


def _cmd_status(args: argparse.Namespace) -> int:
    from vigie.local.status import status

    return status(Path(args.data), as_json=args.json)


def _cmd_prometheus_config(args: argparse.Namespace) -> int:
    import json
    import sys

    import yaml

    from vigie.local.monitoring import prometheus_config

    try:
        state = json.loads((Path(args.data) / "run.json").read_text())
    except (OSError, ValueError):
        print(f"vigie prometheus-config: no running `vigie run` in {args.data} (run.json)",
              file=sys.stderr)
        return 2
    rules = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"
    sys.stdout.write(yaml.safe_dump(prometheus_config(
        state, interval_s=args.interval_s, rule_files=[str(rules)] if rules.exists() else [])))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run everything on this machine (the embedded default)")
    p.add_argument("--data", default="var", help="data folder (default ./var); survives restarts")
    p.add_argument("--port-base", type=int, default=18000,
                   help="internal ports are base+1… (NATS, PostgreSQL, S3, RTSP, services)")
    p.add_argument("--http-port", type=int, default=8080, help="port of the web interface")
    p.add_argument("--footage", help="folder of clips for the simulated cameras "
                   "(default ../shared/footage; a test pattern when absent)")
    p.add_argument("--replicas", type=int, default=1,
                   help="replicas of ingest, masking and recorder (default 1); they share the "
                   "cameras, and take over those of one that dies")
    p.add_argument("--nats-cluster", type=int, default=1, metavar="N",
                   help="N clustered nats-servers (3 or 5) with VIDEO, EVENTS and the claims "
                   "replicated on 3 of them: one node may die without loss")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("prometheus-config", help="print a Prometheus configuration that scrapes "
                       "the running `vigie run` (its services, exporters and store) and loads "
                       "deploy/prometheus/alerts.yml")
    p.add_argument("--data", default="var", help="vigie run's data folder (default ./var)")
    p.add_argument("--interval-s", type=float, default=15, help="scrape and rule interval")
    p.set_defaults(func=_cmd_prometheus_config)

    p = sub.add_parser("status", help="health of the services and state of every camera")
    p.add_argument("--data", default="var", help="data folder of the running `vigie run`")
    p.add_argument("--json", action="store_true", help="one JSON object for scripts")
    p.set_defaults(func=_cmd_status)
