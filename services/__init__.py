"""Vigie's six services; each depends on libs/ (package ``vigie``), never on another service."""

SERVICES = ("ingest", "masking", "recorder", "viewer-gateway", "verbalisation", "retention")


def module_name(service: str) -> str:
    """``viewer-gateway`` → ``services.viewer_gateway``."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of: {', '.join(SERVICES)}")
    return f"services.{service.replace('-', '_')}"
