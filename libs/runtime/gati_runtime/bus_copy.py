"""Whether a change event's object is the object as the API server stores it.

The watcher masks configured fields (`GATI_REDACT_FIELDS`, `gati_runtime.redaction`) before an
object enters the stream, so a secret never reaches it, and names the paths that masked a value
in the event (`ChangeEvent.masked_fields`). A consumer that takes state from the stream must not
act on, or write back, a masked value: a copy with a masked field it reads is read from the API
server instead. The consumers that take state from an event's copy (the reconciler's render and
status writes, the scaler's scaling spec and last recorded decision) read nothing under the
object's annotations, so a mask there, such as the default one of kubectl's last-applied
annotation, leaves the copy usable; a consumer that read annotations could not use this rule.
The paths are read, not the object searched for the marker: an object may hold the marker as
its own value, and a watcher knows what it masked.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from gati_contracts.events import ChangeEvent
from gati_runtime.redaction import FieldPath, RedactionError

_NOT_READ: Final = ("metadata", "annotations")


def withheld(event: ChangeEvent) -> bool:
    """Whether the watcher masked a field of `event`'s object that a consumer may read; also
    when the event predates `masked_fields` (None), since its copy may hold masked values."""
    masked = event.masked_fields
    if masked is None:
        return True
    return any(_read_by_consumers(path) for path in masked)


@lru_cache(maxsize=256)
def _read_by_consumers(path: str) -> bool:
    try:
        segments = FieldPath.parse(path).segments
    except RedactionError:
        return True  # a path this build cannot read: assume the worst, the API server has it
    return segments[: len(_NOT_READ)] != _NOT_READ
