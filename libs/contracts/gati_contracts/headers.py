"""Header names of every message on the bus, and the rule for its de-duplication id.

The `Nats-Msg-Id` of a change depends on the object's state only, never on how a watcher learnt
of it (watch, list, diff) or which replica saw it: two replicas that see the same change publish
the same id, and JetStream keeps one copy.
"""

from __future__ import annotations

from typing import Final

MSG_ID: Final = "Nats-Msg-Id"
SCHEMA: Final = "Gati-Schema"
SCHEMA_VERSION: Final = "Gati-Schema-Version"
TRACEPARENT: Final = "traceparent"
"""W3C trace context, so a change can be followed from the watcher through every service."""


def change_msg_id(uid: str, resource_version: str, *, deleted: bool) -> str:
    """`<uid>:<resourceVersion>` for a live object; `<uid>:deleted` for its deletion, which has
    one id whatever resourceVersion the deleting watcher last saw."""
    return f"{uid}:deleted" if deleted else f"{uid}:{resource_version}"
