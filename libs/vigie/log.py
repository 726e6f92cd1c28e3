"""structlog set-up: JSON in production, readable in a terminal, secrets redacted everywhere.

Redaction runs after exceptions are rendered, so that a PyAV error quoting
``rtsp://agent:S3cret@host/stream`` is cleaned like any other field (PyAV puts the URL it was given,
password included, in its messages).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog

# scheme://user:password@host → scheme://user:***@host (RTSP, postgres, nats, http…)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s'\"]*):[^@\s'\"]*@")
# libpq key/value DSN and query strings: password=… / pwd=… / secret=…
_KEY_VALUE_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|secret_key|token)\s*[=:]\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)",
    re.IGNORECASE,
)
_SECRET_KEYS = re.compile(r"(password|passwd|secret|token|credential|authorization)", re.IGNORECASE)
REDACTED = "***"


def redact(text: str) -> str:
    """Remove passwords from URLs and key=value strings."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    return _KEY_VALUE_SECRET.sub(lambda m: f"{m['key']}{REDACTED}", text)


def redact_value(value: Any) -> Any:
    """Redact strings inside any JSON-like value (dicts, lists, exceptions rendered as text)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEYS.search(k) and v else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value


def _redaction_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return redact_value(event_dict)  # type: ignore[no-any-return]


def configure_logging(
    *, level: str = "info", fmt: str = "json", service: str | None = None, stream: Any = None
) -> None:
    """Configure structlog and route the standard library's loggers (nats, uvicorn) through it."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
        _redaction_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "botocore", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.contextvars.clear_contextvars()
    if service:
        structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    """A lazy logger: safe at import time, configured by ``configure_logging`` when first used.

    Bind context per call site (``log.bind(camera=…)``), not here: binding at import time would
    freeze structlog's default configuration into the logger.
    """
    return structlog.stdlib.get_logger(name)
