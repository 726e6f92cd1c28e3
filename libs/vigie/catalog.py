"""The six services by name: what the `vigie` command and the embedded default start.

The arrows point one way — libs ← services ← entry points: this package never imports a service;
`vigie service <name>` finds the service's module by this name at run time, and the supervisor runs
each as a process."""

from __future__ import annotations

SERVICES = ("ingest", "masking", "recorder", "viewer-gateway", "verbalisation", "retention")


def module_name(service: str) -> str:
    """``viewer-gateway`` → ``services.viewer_gateway``."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of: {', '.join(SERVICES)}")
    return f"services.{service.replace('-', '_')}"
