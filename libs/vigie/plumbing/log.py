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

# Where a URL starts; its credentials are found by reading the URL, not by a pattern of what a
# password may contain (quotes, '@', '/', spaces: cameras are configured by hand).
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://")
# libpq key/value DSN and query strings: password=… / pwd=… / secret=…
_KEY_VALUE_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|secret_key|token)\s*[=:]\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)",
    re.IGNORECASE,
)
_SECRET_KEYS = re.compile(r"(password|passwd|secret|token|credential|authorization)", re.IGNORECASE)
REDACTED = "***"


def redact_url_credentials(text: str) -> str:
    """scheme://user:password@host → scheme://user:***@host, whatever the password holds.

    The userinfo runs to the *last* '@' on the URL's line (a password may contain '@', quotes or
    spaces; PyAV quotes URLs as typed). When unsure, more is hidden, never less: a line that
    mentions a URL and, later, an address with '@' loses the text in between.
    """
    out: list[str] = []
    pos = 0
    while (found := _SCHEME.search(text, pos)) is not None:
        start = found.end()
        line_end = text.find("\n", start)
        at = text.rfind("@", start, len(text) if line_end < 0 else line_end)
        colon = text.find(":", start, at) if at >= 0 else -1
        if colon < 0:  # no credentials, or a user name alone
            out.append(text[pos:start])
            pos = start
            continue
        out.append(text[pos:colon + 1] + REDACTED)
        pos = at
    out.append(text[pos:])
    return "".join(out)


def redact(text: str) -> str:
    """Remove passwords from URLs and key=value strings."""
    text = redact_url_credentials(text)
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
