"""The field-manager and schema functions in use: the pure modules once they exist.

`fieldmanager` and `openapi` are written in parallel; until one of them is present its
stand-in from `fallbacks` is used, so the server works at every commit.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar, cast

from gati_kubesim import fallbacks

T = TypeVar("T")


def _pick(module: str, name: str, fallback: T) -> T:
    try:
        found: Any = getattr(importlib.import_module(f"gati_kubesim.{module}"), name)
    except (ModuleNotFoundError, AttributeError):
        return fallback
    return cast(T, found)


server_side_apply = _pick("fieldmanager", "server_side_apply", fallbacks.server_side_apply)
record_update = _pick("fieldmanager", "record_update", fallbacks.record_update)
ApplyConflict: type[Exception] = _pick("fieldmanager", "ApplyConflict", fallbacks.ApplyConflict)
ApplyError: type[Exception] = _pick("fieldmanager", "ApplyError", fallbacks.ApplyError)
validate_schema = _pick("openapi", "validate", fallbacks.validate)
apply_defaults = _pick("openapi", "apply_defaults", fallbacks.apply_defaults)
prune = _pick("openapi", "prune", fallbacks.prune)
