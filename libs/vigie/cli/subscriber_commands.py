"""`vigie subscriber add` and `vigie events follow`: police systems subscribe durably to their
communes' events (issue 25; docs/events.md). `add` runs with the provisioning account; `follow` is
the reference client an integrator starts from, connected as the subscriber itself."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from vigie.cli.admin_commands import CommandError, _data_option, _run, cli_settings


async def _subscriber_add(args: argparse.Namespace) -> int:
    from vigie.bus.connection import connect_nats, jetstream
    from vigie.bus.subjects import BusNames
    from vigie.bus.subscribers import add_subscriber, durable_name

    communes = [c for c in args.communes.split(",") if c]
    common = cli_settings(args.data)
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
          f"{info.stream_name}, events of {', '.join(communes)}; "
          f"{info.num_pending} waiting. Its NATS user must be in the server's configuration "
          f"(vigie nats-config --external {args.name}={','.join(communes)}, password "
          f"$VIGIE_NATS_PASSWORD_{args.name.upper().replace('-', '_')}); it connects with "
          f"`vigie events follow --subscriber {args.name}`.")
    return 0


async def _events_follow(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from vigie.bus.connection import connect_nats, jetstream
    from vigie.bus.subjects import BusNames
    from vigie.bus.subscribers import follow

    common = cli_settings(args.data)
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
