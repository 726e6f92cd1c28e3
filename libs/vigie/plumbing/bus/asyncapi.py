"""The AsyncAPI document police systems subscribe from, generated from the event models.

`vigie asyncapi` writes docs/asyncapi.yaml; a test keeps the committed file equal to the models.
"""

from __future__ import annotations

from typing import Any

import yaml

from vigie.plumbing.bus.events import EVENT_TYPES, Event


def _message_name(cls: type[Event]) -> str:
    return cls.__name__


# Always in an event (made by the publisher), whatever the model's defaults say: subscribers
# de-duplicate on event_id and order by time.
ALWAYS = ("schema_version", "event_id", "time", "commune")


def payload_schema(cls: type[Event]) -> dict[str, Any]:
    schema = cls.model_json_schema(mode="serialization")
    schema.pop("title", None)
    required = schema.setdefault("required", [])
    schema["required"] = [*(f for f in ALWAYS if f in schema["properties"] and f not in required),
                          *required]
    return schema


HEADERS = {"type": "object", "properties": {"Nats-Msg-Id": {
    "type": "string", "description": "The event's event_id (JetStream de-duplicates on it)"}}}


def build_document(version: str = "0.1.0") -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for cls in EVENT_TYPES:
        name = _message_name(cls)
        messages[name] = {
            "messageId": name,
            "name": cls.event_type(),
            "title": name,
            "summary": cls.summary,
            "contentType": "application/json",
            "headers": HEADERS,
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
                "bindings": {"nats": {"bindingVersion": "0.1.0"}},
                "message": {"$ref": f"#/components/messages/{name}"},
            },
        }
    return {
        "asyncapi": "2.6.0",
        "id": "urn:vigie:events",
        "info": {
            "title": "Vigie events",
            "version": version,
            "contact": {"name": "The deployment's operator (CSU)"},
            "license": {"name": "AGPL-3.0-or-later",
                        "url": "https://www.gnu.org/licenses/agpl-3.0.html"},
            "description": (
                "Events published by Vigie on NATS JetStream, stream EVENTS (kept 30 days). A "
                "police or partner system reads them through the durable consumer "
                "subscriber_<name> the deployment made for it (bind, fetch, acknowledge; one "
                "event in flight, so in order), over TLS with its client certificate, which is "
                "its account (subject CN=<name>,OU=subscriber,O=Vigie; no password), with the "
                "inbox prefix _INBOX_<name>. It gets vigie.events.<commune>.> of its communes "
                "and vigie.events._system.register.checkpoint. Payloads are JSON; de-duplicate "
                "on event_id; ignore unknown fields. How to: docs/integration.md."
            ),
        },
        "defaultContentType": "application/json",
        "tags": [{"name": "vidéoprotection"}, {"name": "police"}],
        "servers": {
            "production": {
                "url": "tls://{host}:4222", "protocol": "nats",
                "description": "The deployment's NATS, TLS only, a client certificate required",
                "variables": {"host": {"description": "The deployment's NATS address"}},
                "security": [{"subscriberCertificate": []}],
            },
        },
        "channels": channels,
        "components": {
            "messages": messages,
            "securitySchemes": {"subscriberCertificate": {
                "type": "X509",
                "description": "Mutual TLS: a client certificate of the deployment's CA "
                               "(`vigie subscriber add` or `vigie certs client`); its subject "
                               "is the NATS user"}},
        },
    }


def render_document() -> str:
    return yaml.safe_dump(build_document(), sort_keys=False, allow_unicode=True, width=100)


def schemas_by_event_type(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """event type (``camera.offline``) → JSON schema of its payload, read from a document."""
    return {m["name"]: m["payload"] for m in document["components"]["messages"].values()}
