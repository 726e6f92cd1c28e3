"""Vigie's six services; each depends on libs/ (package ``vigie``), never on another service."""

from vigie.plumbing.catalog import SERVICES, module_name

__all__ = ["SERVICES", "module_name"]
