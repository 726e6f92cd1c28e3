"""`vigie subscriber add` and `vigie events follow`: police systems subscribe durably to their
communes' events (issue 25; docs/events.md). `add` runs with the provisioning account; `follow` is
the reference client an integrator starts from, connected as the subscriber itself."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from vigie.cli.admin_commands import CommandError, _data_option, _run, cli_settings


async def _subscriber_add(args: argparse.Namespace) -> int:
    from vigie.plumbing.bus.connection import connect_nats, jetstream
    from vigie.plumbing.bus.subjects import BusNames, check_token
    from vigie.plumbing.bus.subscribers import add_subscriber, durable_name, filters

    communes = [c for c in args.communes.split(",") if c]
    try:
        check_token(args.name, "subscriber")
        filters(BusNames(), communes)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    common = cli_settings(args.data)
    embedded = not os.environ.get("VIGIE_POSTGRES_DSN")
    await _known_communes(common, communes)
    if embedded:  # `make run`: its user and certificate too, the nats-servers reloaded
        cert, key = _subscriber_certificate(args.data, args.name)
        await _hosted(args.data, args.name, communes)
    nc = await connect_nats(common, name="vigie-subscriber-add", timeout_s=10)
    try:
        names = BusNames(common.bus_root)
        try:
            info = await add_subscriber(jetstream(nc), names, args.name, communes)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    finally:
        await nc.close()
    print(f"Subscriber {args.name}: durable consumer {durable_name(args.name)} on "
          f"{info.stream_name}, events of {', '.join(communes)} and the register's checkpoints; "
          f"{info.num_pending} waiting.")
    if embedded:
        print(f"  Connect to {common.nats_url} over TLS with its certificate, which is its "
              f"account (no user, no password):\n"
              f"    CA {common.nats_tls_ca}\n    certificate {cert}\n    key {key}\n"
              f"  Inbox prefix _INBOX_{args.name}; bind to {durable_name(args.name)} on "
              f"{info.stream_name} (docs/integration.md). Or: vigie events follow --subscriber "
              f"{args.name}")
    else:
        print(f"  Its NATS user must be in the server's configuration (vigie nats-config "
              f"--external {args.name}={','.join(communes)}) and it connects with its "
              f"certificate (vigie certs client {args.name}), subject "
              f"CN={args.name},OU=subscriber,O=Vigie (docs/integration.md).")
    return 0


async def _known_communes(common: object, communes: list[str]) -> None:
    from vigie.plumbing.db.pool import pool_from_settings

    pool = await pool_from_settings(common, max_size=1)  # type: ignore[arg-type]
    try:
        known = {r["slug"] for r in await pool.fetch(
            "SELECT slug FROM communes WHERE slug = ANY($1::text[])", communes)}
    finally:
        await pool.close()
    if unknown := [c for c in communes if c not in known]:
        raise CommandError(f"no such commune: {', '.join(unknown)}")


def _subscriber_certificate(data: Path, name: str) -> tuple[Path, Path]:
    """Its client certificate from the embedded default's CA, made once."""
    from vigie.plumbing import certs
    folder = data / "pki" / "subscribers"
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    if not key.exists():
        ca = certs.load(data / "pki", "ca")
        certs.issue(ca, name, client=True, kind=certs.SUBSCRIBER).write(folder, name)
    return cert, key


async def _hosted(data: Path, name: str, communes: list[str]) -> None:
    """Written into the subscribers the running `vigie run` follows; returns once its
    nats-servers have reloaded with this user (run.json says so)."""
    from vigie.local.supervisor import load_subscribers, save_subscribers

    subscribers = load_subscribers(data)
    subscribers[name] = communes
    save_subscribers(data, subscribers)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while loop.time() < deadline:
        state = json.loads((data / "run.json").read_text())
        if state.get("subscribers", {}).get(name) == communes:
            return
        await asyncio.sleep(0.2)
    raise CommandError(f"the running vigie run in {data} did not take {name} in 15 s: is it "
                       "running (vigie status)?")


async def _events_follow(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from vigie.plumbing.bus.connection import connect_nats, jetstream
    from vigie.plumbing.bus.subjects import BusNames
    from vigie.plumbing.bus.subscribers import follow

    common = cli_settings(args.data)
    if not os.environ.get("VIGIE_POSTGRES_DSN") and not os.environ.get("VIGIE_NATS_TLS_CERT"):
        # The embedded default: the certificate `vigie subscriber add` made for it.
        folder = args.data / "pki" / "subscribers"
        common = common.model_copy(update={"nats_tls_cert": folder / f"{args.subscriber}.pem",
                                           "nats_tls_key": folder / f"{args.subscriber}.key"})
    password = os.environ.get("VIGIE_SUBSCRIBER_PASSWORD")
    # Over TLS its certificate is its account (`vigie certs client`): no password to give.
    if not password and common.nats_tls_cert is None:
        raise CommandError("VIGIE_SUBSCRIBER_PASSWORD is not set: the subscriber's own password "
                           "(never the provisioning account's), or its certificate in "
                           "VIGIE_NATS_TLS_CERT and VIGIE_NATS_TLS_KEY")
    common = common.model_copy(update={
        "nats_user": args.subscriber, "nats_password": SecretStr(password) if password else None,
        **({"nats_url": args.nats_url} if args.nats_url else {})})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    nc = await connect_nats(common, name=f"vigie-events-follow-{args.subscriber}", timeout_s=10)
    try:
        await follow(jetstream(nc), BusNames(common.bus_root), args.subscriber, sys.stdout,
                     stop=stop)
    finally:
        await nc.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    subscriber = sub.add_parser("subscriber", help="external subscribers to the events")
    subscriber_sub = subscriber.add_subparsers(dest="subscriber_command", required=True,
                                               metavar="ACTION")
    p = subscriber_sub.add_parser("add", help="a police system's durable consumer of its "
                                  "communes' events (run again to change the communes)")
    p.add_argument("name", help="its NATS user, as in vigie nats-config --external")
    p.add_argument("--communes", required=True, help="COMMUNE[,COMMUNE]")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _subscriber_add))

    events = sub.add_parser("events", help="read the events as an external subscriber")
    events_sub = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    p = events_sub.add_parser("follow", help="the reference client: JSON lines on stdout, each "
                              "acknowledged once printed; catches up from where it stopped")
    p.add_argument("--subscriber", required=True, help="its NATS user")
    p.add_argument("--nats-url", help="default: VIGIE_NATS_URL, or the embedded default's")
    _data_option(p)
    p.set_defaults(func=lambda a: _run(a, _events_follow))
