"""Label and field selectors, parsed once per request and matched against stored objects.

The grammar is the one `kubectl -l` and client libraries send: equality (`a=b`, `a==b`,
`a!=b`) and set-based (`a in (x,y)`, `a notin (x)`, `a`, `!a`) requirements joined by commas.
Parsing rejects what the real server rejects, so a client's typo fails loudly here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gati_kubesim import bounded

_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
# Keys found valid. Every write of an object's labels or annotations checks each key, and
# keys are a small vocabulary (app.kubernetes.io/name, gati.dev/owner, ...) repeated over
# every object, where the regular expression costs a microsecond or more a key.
_VALID_KEYS: dict[str, None] = {}
_VALID_KEYS_MAX = 4_096


class SelectorError(ValueError):
    """A selector the server cannot parse; the HTTP layer answers 400 with this message."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match objects without the label, as Kubernetes defines them.
        return not present or labels[self.key] not in self.values


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses, so `a in (x,y),b` has two requirements."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def valid_label_key(key: str) -> bool:
    """A qualified name: optional DNS-subdomain prefix (<= 253) and a name part (<= 63)."""
    if key in _VALID_KEYS:
        return True
    prefix, _, name = key.rpartition("/")
    valid = bool(_KEY.match(key)) and len(name) <= 63 and len(prefix) <= 253
    if valid:
        _VALID_KEYS[key] = None
        bounded.trim(_VALID_KEYS, _VALID_KEYS_MAX)
    return valid


def valid_label_value(value: str) -> bool:
    return bool(_VALUE.match(value)) and len(value) <= 63


def _check_key(key: str, selector: str) -> str:
    if not valid_label_key(key):
        raise SelectorError(
            f'unable to parse requirement: invalid label key "{key}" in "{selector}"'
        )
    return key


def _check_value(value: str, selector: str) -> str:
    if not valid_label_value(value):
        raise SelectorError(
            f'unable to parse requirement: invalid label value "{value}" in "{selector}"'
        )
    return value


_SET = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")
_EQ = re.compile(r"^([^=!\s]+)\s*(==|=|!=)\s*(.*)$")


def parse_label_selector(selector: str | None) -> list[Requirement]:
    if not selector:
        return []
    reqs: list[Requirement] = []
    for part in _split_top(selector):
        if m := _SET.match(part):
            key, op, inner = m.group(1), m.group(2), m.group(3)
            values = tuple(_check_value(v.strip(), selector) for v in inner.split(",") if v.strip())
            if not values:
                raise SelectorError(f'unable to parse requirement: empty set in "{selector}"')
            reqs.append(Requirement(_check_key(key, selector), op, values))
        elif m := _EQ.match(part):
            key, op, value = m.group(1), m.group(2), m.group(3).strip()
            reqs.append(
                Requirement(
                    _check_key(key, selector),
                    "!=" if op == "!=" else "=",
                    (_check_value(value, selector),),
                )
            )
        elif part.startswith("!"):
            reqs.append(Requirement(_check_key(part[1:].strip(), selector), "!"))
        else:
            reqs.append(Requirement(_check_key(part, selector), "exists"))
    return reqs


def labels_match(reqs: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    present = labels or {}
    return all(r.matches(present) for r in reqs)


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        found = field_value(obj, self.path)
        return (found != self.value) if self.negate else (found == self.value)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """A field selector compares strings; absent fields compare as the empty string."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, Mapping):
        # Event `source` selects on its component, as the real server's field label does.
        return str(current.get("component", ""))
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def parse_field_selector(
    selector: str | None, supported: tuple[str, ...]
) -> list[FieldRequirement]:
    if not selector:
        return []
    allowed = {"metadata.name", "metadata.namespace", *supported}
    reqs: list[FieldRequirement] = []
    for part in _split_top(selector):
        m = _EQ.match(part)
        if not m:
            raise SelectorError(f'invalid selector: "{part}"; a field selector is key=value')
        path, op, value = m.group(1), m.group(2), m.group(3).strip()
        if path not in allowed:
            raise SelectorError(f'field label not supported: "{path}"')
        reqs.append(FieldRequirement(path, value, op == "!="))
    return reqs


def fields_match(reqs: list[FieldRequirement], obj: Mapping[str, Any]) -> bool:
    return all(r.matches(obj) for r in reqs)


def selector_from_label_selector(sel: Mapping[str, Any] | None) -> str:
    """Render a `metav1.LabelSelector` as the string form `/scale` reports in `status.selector`."""
    if not sel:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        op = str(expr.get("operator", ""))
        key = str(expr.get("key", ""))
        values = ",".join(sorted(str(v) for v in expr.get("values") or []))
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


Matcher = Callable[[Mapping[str, Any]], bool]


def build_matcher(
    label_selector: str | None, field_selector: str | None, field_labels: tuple[str, ...]
) -> Matcher | None:
    """One predicate for list and watch, or None when nothing is selected out."""
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector, field_labels)
    if not labels and not fields:
        return None

    def match(obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return labels_match(labels, meta.get("labels")) and fields_match(fields, obj)

    return match
