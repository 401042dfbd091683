"""Stream names and subject roots of the bus (DESIGN.md §3).

JetStream forbids two streams from capturing overlapping subjects, so `GATI` lists its roots
one by one instead of `gati.>`: `gati.metrics.>` belongs to the short-lived `GATI_METRICS`.
Every variable token goes through `tokens.encode_token`, so names with dots and paths with
slashes stay one token each and parse back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gati_contracts.kinds import (
    GATI_KINDS,
    OWNED_KINDS,
    KindInfo,
    UnknownKindError,
    kind_for_token,
    kind_info,
)
from gati_contracts.tokens import TokenError, decode_token, encode_token

STREAM: Final = "GATI"
METRICS_STREAM: Final = "GATI_METRICS"
ROUTES_BUCKET: Final = "gati-routes"
# Per-object work leases (`gati_runtime.lease`): which replica acts on an object right now.
LEASES_BUCKET: Final = "gati-leases"

CR_ROOT: Final = "gati.cr"
OWNED_ROOT: Final = "gati.owned"
STATUS_ROOT: Final = "gati.status"
ROUTES_ROOT: Final = "gati.routes"
METRICS_ROOT: Final = "gati.metrics"
TRAFFIC_ROOT: Final = "gati.metrics.traffic"

STREAM_SUBJECTS: Final[tuple[str, ...]] = (
    f"{CR_ROOT}.>",
    f"{OWNED_ROOT}.>",
    f"{STATUS_ROOT}.>",
    f"{ROUTES_ROOT}.>",
)
METRICS_STREAM_SUBJECTS: Final[tuple[str, ...]] = (f"{METRICS_ROOT}.>",)

WILDCARD: Final = "*"


class SubjectError(ValueError):
    pass


@dataclass(frozen=True)
class ObjectSubject:
    """`gati.cr|owned|status.<kind>.<namespace>.<name>`: one object's change, state or outcome."""

    root: str
    kind: KindInfo
    namespace: str
    name: str


@dataclass(frozen=True)
class TrafficSubject:
    """`gati.metrics.traffic.<namespace>.<handler>.<version>`; `handler` is the handler path."""

    namespace: str
    handler: str
    version: str


@dataclass(frozen=True)
class RoutesSubject:
    """`gati.routes.<namespace>.<path>`: the routing table of one handler path."""

    namespace: str
    path: str


Subject = ObjectSubject | TrafficSubject | RoutesSubject

_OBJECT_ROOTS: Final[dict[str, tuple[KindInfo, ...]]] = {
    CR_ROOT: GATI_KINDS,
    OWNED_ROOT: OWNED_KINDS,
    STATUS_ROOT: GATI_KINDS,
}


def _object_kind(root: str, kind: str) -> KindInfo:
    info = kind_info(kind)
    if info not in _OBJECT_ROOTS[root]:
        allowed = ", ".join(k.kind for k in _OBJECT_ROOTS[root])
        raise SubjectError(f"{root} carries kinds {allowed}, not {kind}")
    return info


def _join(*tokens: str) -> str:
    return ".".join(tokens)


def cr_subject(kind: str, namespace: str, name: str) -> str:
    """Where the watcher publishes changes of a gati.dev object (`kind` as in `GatiHandler`)."""
    info = _object_kind(CR_ROOT, kind)
    return _join(CR_ROOT, info.token, encode_token(namespace), encode_token(name))


def owned_subject(kind: str, namespace: str, name: str) -> str:
    """Where the watcher publishes changes of objects the operator owns (`Deployment`)."""
    info = _object_kind(OWNED_ROOT, kind)
    return _join(OWNED_ROOT, info.token, encode_token(namespace), encode_token(name))


def status_subject(kind: str, namespace: str, name: str) -> str:
    """Where services publish what they decided and did about a gati.dev object."""
    info = _object_kind(STATUS_ROOT, kind)
    return _join(STATUS_ROOT, info.token, encode_token(namespace), encode_token(name))


def traffic_subject(namespace: str, handler_path: str, version: str) -> str:
    return _join(
        TRAFFIC_ROOT, encode_token(namespace), encode_token(handler_path), encode_token(version)
    )


def routes_subject(namespace: str, path: str) -> str:
    return _join(ROUTES_ROOT, encode_token(namespace), encode_token(path))


def object_filter(root: str, kind: str | None = None, namespace: str | None = None) -> str:
    """A consumer filter for one object root, narrowed to a kind and/or namespace when given."""
    if root not in _OBJECT_ROOTS:
        raise SubjectError(f"{root!r} is not one of {', '.join(_OBJECT_ROOTS)}")
    kind_token = _object_kind(root, kind).token if kind is not None else WILDCARD
    namespace_token = encode_token(namespace) if namespace is not None else WILDCARD
    return _join(root, kind_token, namespace_token, WILDCARD)


def parse_subject(subject: str) -> Subject:
    """Read a subject back into its parts, raising `SubjectError` for anything not ours."""
    tokens = subject.split(".")
    try:
        root = _join(*tokens[:2])
        if root in _OBJECT_ROOTS and len(tokens) == 5:
            info = kind_for_token(tokens[2])
            if info not in _OBJECT_ROOTS[root]:
                raise SubjectError(f"{root} does not carry kind {info.kind}")
            return ObjectSubject(root, info, decode_token(tokens[3]), decode_token(tokens[4]))
        if _join(*tokens[:3]) == TRAFFIC_ROOT and len(tokens) == 6:
            namespace, handler, version = map(decode_token, tokens[3:])
            return TrafficSubject(namespace, handler, version)
        if root == ROUTES_ROOT and len(tokens) == 4:
            return RoutesSubject(decode_token(tokens[2]), decode_token(tokens[3]))
    except (TokenError, UnknownKindError) as error:
        raise SubjectError(f"subject {subject!r}: {error}") from error
    raise SubjectError(f"subject {subject!r} is not a gati subject with the expected tokens")
