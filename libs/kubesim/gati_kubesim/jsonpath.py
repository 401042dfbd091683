"""The JSONPath subset CRDs use for printer columns and scale paths.

CRDs write paths such as `.spec.replicas`, `.status.conditions[0].type` and
`.status.conditions[?(@.type=="Ready")].status`; a full JSONPath engine would be a dependency
for three forms, so this evaluates exactly those and rejects the rest with a clear message.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-$]+)
      |\[(?P<index>-?\d+)\]
      |\[\*\]
      |\[\?\(@\.(?P<fkey>[A-Za-z0-9_\-.]+)\s*==\s*(?P<q>["'])(?P<fval>.*?)(?P=q)\)\]""",
    re.VERBOSE,
)


class JsonPathError(ValueError):
    """A path outside the supported subset, named so the CRD author can fix it."""


def _steps(path: str) -> list[re.Match[str]]:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    text = text.removeprefix("$")
    steps: list[re.Match[str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise JsonPathError(f"unsupported JSONPath {path!r} at {text[pos:]!r}")
        steps.append(m)
        pos = m.end()
    return steps


def validate(path: str) -> None:
    _steps(path)


def find(obj: Any, path: str) -> list[Any]:
    """Every value the path selects; empty when any step is missing."""
    current = [obj]
    for m in _steps(path):
        nxt: list[Any] = []
        for value in current:
            if m.group("field") is not None:
                if isinstance(value, dict) and m.group("field") in value:
                    nxt.append(value[m.group("field")])
            elif m.group("index") is not None:
                i = int(m.group("index"))
                if isinstance(value, list) and -len(value) <= i < len(value):
                    nxt.append(value[i])
            elif m.group("fkey") is not None:
                if isinstance(value, list):
                    for item in value:
                        got: Any = item
                        for part in m.group("fkey").split("."):
                            got = got.get(part) if isinstance(got, dict) else None
                        if got is not None and str(got) == m.group("fval"):
                            nxt.append(item)
            elif isinstance(value, list):
                nxt.extend(value)
            elif isinstance(value, dict):
                nxt.extend(value.values())
        current = nxt
    return current


def first(obj: Any, path: str) -> Any:
    found = find(obj, path)
    return found[0] if found else None


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Write through a plain dotted path (`.spec.replicas`), creating maps on the way."""
    parts = [m.group("field") for m in _steps(path)]
    if not parts or any(p is None for p in parts):
        raise JsonPathError(f"{path!r} must be a plain dotted path to be written")
    current = obj
    for part in parts[:-1]:
        nxt = current.get(part)
        if not isinstance(nxt, dict):
            nxt = current[part] = {}
        current = nxt
    current[parts[-1]] = value
