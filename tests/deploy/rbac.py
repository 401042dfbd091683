"""Which API requests a service's RBAC rules allow, and which rules no request needed.

Kubernetes authorises a request by its verb, API group, resource and subresource, worked out
from the method and path (the API server's RequestInfo). This module does the same for recorded
requests, so a test can run a service, record what it called and prove the rules in `deploy/`
are exactly enough: nothing denied, nothing granted in vain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Rule:
    """One (apiGroup, resource[/subresource], verb) grant, the unit a rule can be unused in."""

    group: str
    resource: str
    verb: str


@dataclass(frozen=True)
class Request:
    verb: str
    group: str
    resource: str
    path: str


class RbacError(ValueError):
    """A rule or request this checker cannot interpret; the message names the field."""


_READ_VERBS = {"GET": "get", "HEAD": "get"}
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def parse_rules(role: Mapping[str, Any]) -> frozenset[Rule]:
    """Flatten a ClusterRole into single grants; wildcards are refused: least privilege."""
    grants: set[Rule] = set()
    name = role.get("metadata", {}).get("name", "?")
    for index, rule in enumerate(role.get("rules") or ()):
        for field in ("apiGroups", "resources", "verbs"):
            values = rule.get(field)
            if not values:
                raise RbacError(f"ClusterRole {name} rules[{index}].{field} is empty")
            if "*" in values:
                raise RbacError(f"ClusterRole {name} rules[{index}].{field} uses '*'; list them")
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    grants.add(Rule(group, resource, verb))
    return frozenset(grants)


def request_info(method: str, url: str) -> Request:
    """Verb, group and resource of one API call, as the API server's RequestInfo derives them."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if segments[:1] == ["api"] and len(segments) >= 2:
        group, rest = "", segments[2:]
    elif segments[:1] == ["apis"] and len(segments) >= 3:
        group, rest = segments[1], segments[3:]
    else:
        raise RbacError(f"path {parts.path!r} is not a resource request (/api/... or /apis/...)")
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        rest = rest[2:]
    if not rest:
        raise RbacError(f"path {parts.path!r} names no resource")
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2:3]
    if sub:
        resource = f"{resource}/{sub[0]}"
    query = parse_qs(parts.query)
    method = method.upper()
    if method in _READ_VERBS:
        if name is None:
            verb = "watch" if query.get("watch", ["false"])[0].lower() in {"true", "1"} else "list"
        else:
            verb = "get"
    elif method == "DELETE":
        verb = "delete" if name is not None else "deletecollection"
    elif method in _WRITE_VERBS:
        verb = _WRITE_VERBS[method]
    else:
        raise RbacError(f"method {method!r} is not a Kubernetes API verb")
    return Request(verb, group, resource, parts.path)


@dataclass(frozen=True)
class Verdict:
    denied: tuple[Request, ...]
    unused: tuple[Rule, ...]

    @property
    def exact(self) -> bool:
        return not self.denied and not self.unused


def check(rules: frozenset[Rule], calls: Iterable[tuple[str, str]]) -> Verdict:
    """Every recorded (method, url) must be granted, and every grant used by some call."""
    used: set[Rule] = set()
    denied: list[Request] = []
    for method, url in calls:
        request = request_info(method, url)
        grant = Rule(request.group, request.resource, request.verb)
        if grant in rules:
            used.add(grant)
        else:
            denied.append(request)
    unused = sorted(rules - used, key=lambda r: (r.group, r.resource, r.verb))
    return Verdict(tuple(denied), tuple(unused))


def rules_by_service(
    docs: Sequence[Mapping[str, Any]], services: Iterable[str]
) -> dict[str, frozenset[Rule]]:
    """The grants of `gati-<service>` for each service, from rendered manifests."""
    roles = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ClusterRole"}
    missing = [s for s in services if f"gati-{s}" not in roles]
    if missing:
        raise RbacError(f"no ClusterRole gati-<service> for {', '.join(missing)}")
    return {s: parse_rules(roles[f"gati-{s}"]) for s in services}
