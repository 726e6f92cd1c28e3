"""The six services by name: what the `vigie` command and the embedded default start.

The arrows point one way — libs ← services ← entry points: this package never imports a service;
`vigie service <name>` finds the service's module by this name at run time, and the supervisor runs
each as a process."""

from __future__ import annotations

SERVICES = ("ingest", "masking", "recorder", "viewer-gateway", "verbalisation", "retention")
# Each service's NATS user (vigie.plumbing.bus.permissions gives each its subjects). With its
# database role (vigie.plumbing.db.roles.role_name), its object-store identity
# (vigie.plumbing.storage.identities.key_env) and its client certificate (`vigie certs init`:
# one per service name), the one definition `make run`, Compose and Kubernetes follow
# (tests/deploy/test_identities_agree.py checks the three).
NATS_USER = {
    "ingest": "ingest",
    "masking": "masking",
    "recorder": "recorder",
    "viewer-gateway": "gateway",
    "verbalisation": "verbalisation",
    "retention": "retention",
}
PROVISIONING_USER = "admin"  # `vigie init` and the operator's CLI: streams and consumers only
# The common name of each NATS user's client certificate: under TLS, nats-server knows a client by
# its certificate alone (`verify_and_map`), so the certificate is the account (issue 34).
NATS_CERTIFICATE = {**{user: service for service, user in NATS_USER.items()},
                    PROVISIONING_USER: "init"}


def module_name(service: str) -> str:
    """``viewer-gateway`` → ``services.viewer_gateway``."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of: {', '.join(SERVICES)}")
    return f"services.{service.replace('-', '_')}"
