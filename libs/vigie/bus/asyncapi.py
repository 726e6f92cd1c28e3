"""The AsyncAPI document police systems subscribe from, generated from the event models.

`vigie asyncapi` writes docs/asyncapi.yaml; a test keeps the committed file equal to the models.
"""

from __future__ import annotations

from typing import Any

import yaml

from vigie.bus.events import EVENT_TYPES, Event


def _message_name(cls: type[Event]) -> str:
    return cls.__name__


def payload_schema(cls: type[Event]) -> dict[str, Any]:
    schema = cls.model_json_schema(mode="serialization")
    schema.pop("title", None)
    return schema


def build_document(version: str = "0.1.0") -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for cls in EVENT_TYPES:
        name = _message_name(cls)
        messages[name] = {
            "name": cls.event_type(),
            "title": name,
            "summary": cls.summary,
            "contentType": "application/json",
            "payload": payload_schema(cls),
        }
        channels[f"vigie.events.{{commune}}.{cls.kind}.{cls.name}"] = {
            "description": cls.summary,
            "parameters": {
                "commune": {
                    "description": "Commune slug (_system for events of no single commune)",
                    "schema": {"type": "string"},
                }
            },
            "subscribe": {
                "operationId": f"on_{cls.kind}_{cls.name}",
                "message": {"$ref": f"#/components/messages/{name}"},
            },
        }
    return {
        "asyncapi": "2.6.0",
        "info": {
            "title": "Vigie events",
            "version": version,
            "description": (
                "Events published by Vigie on NATS JetStream (stream EVENTS). External systems get "
                "a read-only NATS user limited to vigie.events.<commune>.> of their communes. "
                "Payloads are JSON; consumers must ignore unknown fields."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {"url": "nats://nats:4222", "protocol": "nats"},
        },
        "channels": channels,
        "components": {"messages": messages},
    }


def render_document() -> str:
    return yaml.safe_dump(build_document(), sort_keys=False, allow_unicode=True, width=100)


def schemas_by_event_type(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """event type (``camera.offline``) → JSON schema of its payload, read from a document."""
    return {m["name"]: m["payload"] for m in document["components"]["messages"].values()}
