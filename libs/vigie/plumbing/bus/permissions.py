"""The nats-server configuration: one user per service and per external subscriber (DESIGN.md).

Denying ``subscribe`` on ``vigie.raw.>`` is not enough: a user allowed ``$JS.API.>`` can read RAW
through a pull consumer or a direct get (../shared/ENVIRONMENT.md). So the JetStream API is granted per
stream, only the calls a consumer needs, and every user gets inboxes of its own
(``_INBOX_<user>.>``) so that nobody can subscribe to another user's replies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from vigie.plumbing import certs
from vigie.plumbing.bus.connection import inbox_prefix
from vigie.plumbing.bus.subjects import BusNames, check_token
from vigie.plumbing.bus.subscribers import filters, subscriber_publish
from vigie.plumbing.catalog import NATS_CERTIFICATE, PROVISIONING_USER

SERVICE_USERS = ("ingest", "masking", "recorder", "gateway", "verbalisation", "retention")
ADMIN_USER = PROVISIONING_USER


@dataclass(frozen=True)
class Permissions:
    publish: list[str] = field(default_factory=list)
    subscribe: list[str] = field(default_factory=list)
    allow_responses: bool = False


def _consume(stream: str) -> list[str]:
    """The JetStream API calls of a durable pull consumer on one stream, and nothing else."""
    return [
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.API.CONSUMER.DELETE.{stream}.>",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.ACK.{stream}.>",
    ]


def _claims(names: BusNames, service: str) -> list[str]:
    """Its own keys of the claims bucket (create, renew, release, read), nothing else."""
    bucket = names.claims_bucket
    return [
        f"$KV.{bucket}.{service}.>",
        f"$JS.API.STREAM.INFO.KV_{bucket}",
        f"$JS.API.DIRECT.GET.KV_{bucket}.$KV.{bucket}.{service}.>",
        f"$JS.API.STREAM.MSG.GET.KV_{bucket}",
    ]


def service_permissions(names: BusNames) -> dict[str, Permissions]:
    events_out = [names.all_events, f"$JS.API.STREAM.INFO.{names.events_stream}"]
    return {
        # May bring RAW back (a nats-server restart loses memory streams): that stream only.
        # Follows RAW's headers (never a pixel) to carry a camera's stream on when it takes the
        # camera over from a standby session (issue 35).
        "ingest": Permissions(
            publish=[names.all_raw, f"$JS.API.STREAM.INFO.{names.raw_stream}",
                     f"$JS.API.STREAM.CREATE.{names.raw_stream}", *events_out,
                     *_claims(names, "ingest")],
            subscribe=[names.all_raw_headers],
        ),
        # The only reader of RAW, and the only one to answer commissioning-snapshot requests.
        "masking": Permissions(
            # Reads back its camera's last VIDEO frame (masked) to resume where a predecessor
            # stopped (issue 35).
            publish=[names.all_video, *events_out, *_consume(names.raw_stream),
                     f"$JS.API.STREAM.MSG.GET.{names.video_stream}", *_claims(names, "masking")],
            subscribe=[names.snapshot_request("*", "*")],
            allow_responses=True,
        ),
        "recorder": Permissions(publish=[*events_out, *_consume(names.video_stream),
                                         *_claims(names, "recorder")]),
        "gateway": Permissions(
            publish=[
                *events_out,
                names.snapshot_request("*", "*"),
                names.verbalisation_request("*"),
                *_consume(names.video_stream),
                *_consume(names.events_stream),
            ],
            subscribe=[names.all_events],
        ),
        # Answers the gateway's requests; reads VIDEO (masked) for its stills, never RAW.
        "verbalisation": Permissions(publish=[*events_out, *_consume(names.video_stream)],
                                     subscribe=[names.verbalisation_request("*")],
                                     allow_responses=True),
        "retention": Permissions(publish=events_out),
    }


def provisioning_permissions(names: BusNames) -> Permissions:
    """`vigie init` and `vigie subscriber add`: define streams (the claims bucket is one), read
    their state, make the police subscribers' consumers on EVENTS. No picture: it may neither
    subscribe to nor publish on any subject, nor get a message, nor make a consumer on RAW or
    VIDEO (issue 34: it kept `>` at run time). What remains is inherent to defining streams — a
    stream's definition may republish — so its certificate is a provisioning secret, given to the
    init job and the operator's CLI, never to a running service (docs/security.md)."""
    events = names.events_stream
    return Permissions(publish=[
        "$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST",
        "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.CREATE.*", "$JS.API.STREAM.UPDATE.*",
        "$JS.API.CONSUMER.NAMES.*", "$JS.API.CONSUMER.LIST.*", "$JS.API.CONSUMER.INFO.*.>",
        f"$JS.API.CONSUMER.CREATE.{events}.>", f"$JS.API.CONSUMER.DURABLE.CREATE.{events}.>",
        f"$JS.API.CONSUMER.DELETE.{events}.>",
    ])


def external_permissions(names: BusNames, user: str, communes: list[str]) -> Permissions:
    """Its communes' events, live (core subscriptions) or durably (fetch and acknowledge on the
    consumer `vigie subscriber add` made for it); no other JetStream call: it cannot create,
    change or delete a consumer, nor read another stream."""
    return Permissions(
        publish=subscriber_publish(names, user),
        subscribe=filters(names, communes),
    )


def _quote(value: str) -> str:
    return json.dumps(value)


def _password(value: str) -> str:
    # "$VAR" is left unquoted so that nats-server substitutes the environment variable (Compose).
    return value if value.startswith("$") else _quote(value)


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate and key, and the CA whose client certificates it accepts."""
    cert_file: str
    key_file: str
    ca_file: str

    def block(self, *, timeout: float, map_users: bool = False) -> str:
        verify = "verify_and_map" if map_users else "verify"
        return (f"{{ cert_file: {_quote(self.cert_file)}, key_file: {_quote(self.key_file)}, "
                f"ca_file: {_quote(self.ca_file)}, {verify}: true, timeout: {timeout:g} }}")


def nats_identity(user: str, *, external: bool) -> str:
    """The user name nats-server knows a client by under TLS: its certificate's subject. A
    subscriber's certificate is `vigie certs client <user>` (OU subscriber); a service's is the
    one `vigie certs init` made for it (OU service). Another holder's certificate of the same CA
    opens its own account, never this one, whatever password it sends."""
    if external:
        return certs.subject(user, certs.SUBSCRIBER)
    return certs.subject(NATS_CERTIFICATE[user], certs.SERVICE)


def render_server_config(
    *,
    names: BusNames,
    passwords: dict[str, str] | None = None,
    externals: dict[str, list[str]] | None = None,
    extra_users: dict[str, Permissions] | None = None,
    host: str = "127.0.0.1",
    port: int = 4222,
    monitor_port: int | None = None,
    monitor_host: str | None = None,
    store_dir: str,
    server_name: str | None = None,
    cluster_port: int | None = None,
    routes: list[int] | list[str] | None = None,
    tls: ServerTls | None = None,
) -> str:
    """nats-server configuration text; ``passwords`` maps each user to a password or ``$ENV_VAR``.
    With ``tls``, clients and cluster routes speak TLS only and must present a certificate from
    the deployment's CA (R30, R37), and the certificate is the account: each user is named by its
    certificate's subject and has no password (R38). ``extra_users`` are the test harness's."""
    externals = externals or {}
    passwords = passwords or {}
    perms = service_permissions(names)
    perms[ADMIN_USER] = provisioning_permissions(names)
    for ext_user, communes in externals.items():
        perms[check_token(ext_user, "subscriber")] = external_permissions(names, ext_user,
                                                                          communes)
    perms.update(extra_users or {})
    users = []
    for user, p in perms.items():
        if tls is not None:
            if user in (extra_users or {}):
                raise ValueError("a test user has a password, so no place under TLS")
            identity = f"{{ user: {_quote(nats_identity(user, external=user in externals))}"
        elif user in passwords:
            identity = f"{{ user: {_quote(user)}, password: {_password(passwords[user])}"
        else:
            raise ValueError(f"no password for NATS user {user!r}")
        inbox = f"{inbox_prefix(user)}.>"
        pub = p.publish
        sub = [*p.subscribe, inbox]
        # An empty allow list means "no restriction" to nats-server: say deny-all explicitly.
        publish = (f"{{ allow: [{', '.join(map(_quote, pub))}] }}" if pub
                   else '{ deny: [">"] }')
        lines = [
            f"      {identity}",
            "        permissions: {",
            f"          publish: {publish}",
            f"          subscribe: {{ allow: [{', '.join(map(_quote, sub))}] }}",
        ]
        if p.allow_responses:
            lines.append("          allow_responses: true")
        lines.append("        } }")
        users.append("\n".join(lines))
    # The monitoring port answers anyone who reaches it, without a password: Compose keeps it
    # inside the container (its health check), Kubernetes behind a NetworkPolicy (issue 34).
    monitor = (f"http: {_quote(f'{monitor_host or host}:{monitor_port}')}\n" if monitor_port
               else "")
    if server_name:  # "$VAR": each node of a cluster names itself from its environment
        monitor += f"server_name: {_password(server_name)}\n"
    if cluster_port:
        # Routes are ports on `host` (`vigie run --nats-cluster`) or whole URLs (Compose,
        # Kubernetes); authenticated, encrypted routes are the production security issue's.
        peers = ", ".join(_quote(r if isinstance(r, str) else f"nats-route://{host}:{r}")
                          for r in routes or [])
        route_tls = f", tls: {tls.block(timeout=5)}" if tls else ""
        monitor += (f"cluster {{ name: \"vigie\", listen: {_quote(f'{host}:{cluster_port}')}, "
                    f"routes: [{peers}]{route_tls} }}\n")
    if tls:
        monitor += f"tls: {tls.block(timeout=2, map_users=True)}\n"
    return (
        "# Generated by `vigie nats-config`: one user per service, each with only its subjects.\n"
        f"host: {_quote(host)}\nport: {port}\n{monitor}"
        "max_payload: 8MB\n"
        f"jetstream {{ store_dir: {_quote(store_dir)} }}\n"
        "accounts {\n  VIGIE {\n    jetstream: enabled\n    users: [\n"
        + "\n".join(users)
        + "\n    ]\n  }\n}\n"
    )


def all_users(externals: dict[str, list[str]] | None = None) -> list[str]:
    return [*SERVICE_USERS, ADMIN_USER, *(externals or {})]
