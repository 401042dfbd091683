"""An AsyncAPI 3.0 description of the bus, so tools in any language find subjects and payloads.

Generated from the same tables the services use (subject roots, kinds, event types), with the
payloads pointing at the JSON Schemas published beside it; `bus_documents` is what
`gati-operator schemas` writes into `docs/schemas/`.
"""

from __future__ import annotations

import json
from typing import Any, Final

import yaml

from gati_contracts import headers
from gati_contracts.events import (
    SCHEMA_VERSION,
    ChangeEvent,
    Event,
    OutcomeEvent,
    RoutesEvent,
    TrafficSample,
    schema_file_name,
    schema_files,
    schema_name,
)
from gati_contracts.kinds import GATI_KINDS, OWNED_KINDS, KindInfo
from gati_contracts.subjects import CR_ROOT, OWNED_ROOT, ROUTES_ROOT, STATUS_ROOT, TRAFFIC_ROOT

ASYNCAPI_FILE: Final = "asyncapi.yaml"
_TOKEN_RULE: Final = (
    "Every variable token is encoded reversibly: [a-z0-9-] stays as it is, every other byte of "
    "the UTF-8 form becomes _XX (lowercase hex), and the empty string becomes _."
)


def _parameter(description: str) -> dict[str, Any]:
    return {"description": f"{description}, token-encoded."}


def _kind_parameter(kinds: tuple[KindInfo, ...]) -> dict[str, Any]:
    names = ", ".join(f"{k.token} ({k.kind})" for k in kinds)
    return {"enum": [k.token for k in kinds], "description": f"Kind token: {names}."}


_OBJECT_PARAMETERS: Final = {
    "namespace": _parameter("Namespace of the object"),
    "name": _parameter("Name of the object"),
}


def _channel(address: str, description: str, event: type[Event], **params: Any) -> dict[str, Any]:
    message = schema_name(event)
    return {
        "address": address,
        "description": description,
        "parameters": params,
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
    }


def _message(event: type[Event], summary: str) -> dict[str, Any]:
    header_properties: dict[str, Any] = {
        headers.SCHEMA: {"type": "string", "enum": [schema_name(event)]},
        headers.SCHEMA_VERSION: {"type": "string", "enum": [str(SCHEMA_VERSION)]},
        headers.TRACEPARENT: {"type": "string", "description": "W3C trace context."},
    }
    if event is ChangeEvent:
        header_properties[headers.MSG_ID] = {
            "type": "string",
            "description": "<uid>:<resourceVersion>, or <uid>:deleted for a deletion.",
        }
    elif event is OutcomeEvent:
        header_properties[headers.MSG_ID] = {"type": "string", "description": "The eventId."}
    return {
        "name": schema_name(event),
        "summary": summary,
        "contentType": "application/json",
        "headers": {"type": "object", "properties": header_properties},
        "payload": {"$ref": f"./{schema_file_name(event)}"},
    }


def asyncapi_document() -> dict[str, Any]:
    channels = {
        "changes": _channel(
            f"{CR_ROOT}.{{kind}}.{{namespace}}.{{name}}",
            "Every change of a gati.dev object, published once by the watchers.",
            ChangeEvent,
            kind=_kind_parameter(GATI_KINDS),
            **_OBJECT_PARAMETERS,
        ),
        "owned": _channel(
            f"{OWNED_ROOT}.{{kind}}.{{namespace}}.{{name}}",
            "Changes of objects the operator owns, for readiness.",
            ChangeEvent,
            kind=_kind_parameter(OWNED_KINDS),
            **_OBJECT_PARAMETERS,
        ),
        "outcomes": _channel(
            f"{STATUS_ROOT}.{{kind}}.{{namespace}}.{{name}}",
            "What a service decided and did about an object.",
            OutcomeEvent,
            kind=_kind_parameter(GATI_KINDS),
            **_OBJECT_PARAMETERS,
        ),
        "traffic": _channel(
            f"{TRAFFIC_ROOT}.{{namespace}}.{{handler}}.{{version}}",
            "Request samples of one handler version, from routers or the runtime.",
            TrafficSample,
            namespace=_parameter("Namespace of the handler"),
            handler=_parameter("Handler path, such as /api/users"),
            version=_parameter("Version id"),
        ),
        "routes": _channel(
            f"{ROUTES_ROOT}.{{namespace}}.{{path}}",
            "The whole routing table of one path, on every change.",
            RoutesEvent,
            namespace=_parameter("Namespace of the path"),
            path=_parameter("Handler path"),
        ),
    }
    senders = {
        "changes": "watcher",
        "owned": "watcher",
        "outcomes": "services",
        "traffic": "routers",
        "routes": "timescape",
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "gati-operator bus",
            "version": str(SCHEMA_VERSION),
            "description": "NATS JetStream subjects of gati-operator. " + _TOKEN_RULE,
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": {
            f"{channel}Sent": {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel}"},
                "summary": f"Published by the {sender}.",
            }
            for channel, sender in senders.items()
        },
        "components": {
            "messages": {
                schema_name(event): _message(event, (event.__doc__ or "").strip())
                for event in (ChangeEvent, OutcomeEvent, TrafficSample, RoutesEvent)
            }
        },
    }


def bus_documents() -> dict[str, str]:
    """Everything published in `docs/schemas/`, keyed by file name."""
    # A JSON round trip unshares repeated parts, which YAML would otherwise print as anchors.
    plain = json.loads(json.dumps(asyncapi_document()))
    document = yaml.safe_dump(plain, sort_keys=False, width=100)
    return {**schema_files(), ASYNCAPI_FILE: document}
