"""Whether a change event's object is the object as the API server stores it.

The watcher masks configured fields (`GATI_REDACT_FIELDS`, `gati_runtime.redaction`) before an
object enters the stream, so a secret never reaches it. A reconcile that takes its state from
the stream must not render, or write back, a masked value: a copy with a masked field is read
from the API server instead. The one mask every copy may carry by default, kubectl's
last-applied annotation, is never read by a reconcile (the render takes nothing from the owner's
annotations and a status write sends the status alone), so it leaves the copy usable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from gati_runtime.redaction import LAST_APPLIED, REDACTED

_MARK: Final = msgspec.json.encode(REDACTED)
_LAST_APPLIED_KEY: Final = LAST_APPLIED.split('"')[1]
_LAST_APPLIED_MARK: Final = msgspec.json.encode(_LAST_APPLIED_KEY) + b":" + _MARK


def withheld(obj: Mapping[str, Any]) -> bool:
    """Whether the watcher masked a field of `obj` that a reconcile may read."""
    data = msgspec.json.encode(obj)
    return data.count(_MARK) > data.count(_LAST_APPLIED_MARK)
