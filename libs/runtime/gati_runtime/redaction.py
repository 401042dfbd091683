"""Fields masked in an object before it is published, so a secret never reaches the stream.

The stream keeps every object for days and the read-only `tooling` user may replay all of it,
so a value put where it does not belong (a password in a plain `env` value, which `kubectl
apply` also copies into the `last-applied-configuration` annotation) must be withheld at the
one place objects enter the bus. Masking keeps the key with a marker rather than deleting it, so
a reader of the stream sees that a value existed and was withheld, and a string field stays a
string for every decoder downstream.

Paths are written as `kubectl get -o jsonpath` users expect: dotted fields, `[*]` for every
item of a list or value of a map, `[0]` for one item, and `["a.b/c"]` for a key that contains
dots (annotation keys do). Paths that would hide what consumers identify an object by (kind,
apiVersion, name, namespace, uid, resourceVersion, generation, ownerReferences) are refused at
start-up: without them no event could be routed, de-duplicated or ordered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

REDACTED: Final = "<redacted>"
LAST_APPLIED: Final = 'metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]'
DEFAULT_REDACT_FIELDS: Final = (LAST_APPLIED,)
NONE: Final = "none"
"""The value of `GATI_REDACT_FIELDS` that turns redaction off."""

_WILDCARD: Final = "*"
_IDENTITY: Final = (
    ("kind",),
    ("apiVersion",),
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("metadata", "uid"),
    ("metadata", "resourceVersion"),
    ("metadata", "generation"),
    ("metadata", "ownerReferences"),
)
_SEGMENT = re.compile(
    r"""\.?(?:
        \[\s*"(?P<dq>[^"]+)"\s*\]
      | \[\s*'(?P<sq>[^']+)'\s*\]
      | \[\s*(?P<bare>[^\]"']+?)\s*\]
      | (?P<field>[^.\[\]]+)
    )""",
    re.VERBOSE,
)
_EXAMPLE = 'such as spec.env[*] or metadata.annotations["example.com/token"]'


class RedactionError(ValueError):
    """A field path that cannot be used; the message names it and the fix."""


@dataclass(frozen=True)
class FieldPath:
    text: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> FieldPath:
        source = text.strip()
        segments: list[str] = []
        position = 0
        while position < len(source):
            match = _SEGMENT.match(source, position)
            if match is None or (position == 0 and source.startswith(".")):
                raise RedactionError(
                    f"field path {text!r}: cannot read it at character {position + 1}; "
                    f'write dotted fields with [*] or ["key"], {_EXAMPLE}'
                )
            segment = next(value for value in match.groupdict().values() if value is not None)
            segments.append(segment.strip())
            position = match.end()
        if not segments:
            raise RedactionError(f"field path {text!r} is empty; {_EXAMPLE}")
        path = cls(source, tuple(segments))
        hidden = next((".".join(i) for i in _IDENTITY if path._covers(i)), None)
        if hidden is not None:
            raise RedactionError(
                f"field path {text!r} would hide {hidden}, which consumers route, de-duplicate "
                "and order events by; name a field below it instead"
            )
        return path

    def _covers(self, identity: tuple[str, ...]) -> bool:
        """Whether this path masks `identity` or a map or list that holds it."""
        if len(self.segments) > len(identity):
            return False
        return all(s in (_WILDCARD, i) for s, i in zip(self.segments, identity, strict=False))


class Masked(NamedTuple):
    obj: Mapping[str, Any]
    paths: tuple[str, ...]
    """The configured paths (`FieldPath.text`) that masked at least one value of `obj`."""


@dataclass(frozen=True)
class Redaction:
    paths: tuple[FieldPath, ...] = ()

    @classmethod
    def parse(cls, text: str | Sequence[str]) -> Redaction:
        """A comma-separated list (commas inside brackets belong to the key), or `none`."""
        items = _split(text) if isinstance(text, str) else [item.strip() for item in text]
        items = [item for item in items if item]
        if items == [NONE]:
            return cls()
        return cls(tuple(FieldPath.parse(item) for item in items))

    @classmethod
    def default(cls) -> Redaction:
        return cls.parse(DEFAULT_REDACT_FIELDS)

    def apply(self, obj: Mapping[str, Any]) -> Masked:
        """`obj` itself when no path matches (the common case costs no copy); otherwise a copy
        in which only the maps and lists on a masked path are new, so `obj` is never changed.
        With it the paths that masked a value, so a reader of the copy is told which values
        are the marker instead of searching for it (an object may hold the marker itself)."""
        result: Any = obj
        masked: tuple[str, ...] = ()
        for path in self.paths:
            before, result = result, _mask(result, path.segments)
            if result is not before:
                masked += (path.text,)
        return Masked(result, masked)

    def __str__(self) -> str:
        return ", ".join(path.text for path in self.paths) or NONE


_LEAVES: Final = frozenset({str, int, float, bool, type(None)})


def _mask(node: Any, segments: tuple[str, ...]) -> Any:
    # Decoded JSON is plain dicts, lists and scalars: telling them apart by their exact type
    # skips the ABC machinery behind isinstance(x, Mapping), which showed up in the watcher's
    # profile (~14 % of its CPU in a burst); anything else takes the general checks.
    kind = type(node)
    if kind in _LEAVES:
        return node
    head, rest = segments[0], segments[1:]
    if kind is dict or (kind is not list and isinstance(node, Mapping)):
        if head != _WILDCARD:
            if head not in node:
                return node
            value = node[head]
            masked = _masked_value(value, rest)
            return node if masked is value else {**node, head: masked}
        changed: dict[Any, Any] = {}
        for key, value in node.items():
            masked = _masked_value(value, rest)
            if masked is not value:
                changed[key] = masked
        return {**node, **changed} if changed else node
    if kind is list or isinstance(node, list):
        indices = _indices(head, len(node))
        copy: list[Any] | None = None
        for index in indices:
            value = _masked_value(node[index], rest)
            if value is not node[index]:
                copy = copy if copy is not None else list(node)
                copy[index] = value
        return copy if copy is not None else node
    return node


def _masked_value(value: Any, rest: tuple[str, ...]) -> Any:
    if rest:
        return _mask(value, rest)
    return value if value == REDACTED else REDACTED


def _indices(head: str, length: int) -> range | list[int]:
    if head == _WILDCARD:
        return range(length)
    if head.isdigit() and int(head) < length:
        return [int(head)]
    return []


def _split(text: str) -> list[str]:
    items, depth, current = [], 0, ""
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return items
