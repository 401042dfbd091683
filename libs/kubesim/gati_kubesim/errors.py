"""Failures as Kubernetes `Status` objects, so every client sees the reason and code it expects.

Clients branch on `reason` (e.g. `AlreadyExists` vs `Conflict`, both 409) and on
`details.causes`, not on the message; building every error through one type keeps those
fields consistent across the store, admission and the HTTP layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REASON_BY_CODE = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class Cause:
    """One field-level reason, the shape of `details.causes[]` in a `Status`."""

    field: str
    reason: str
    message: str


@dataclass
class Details:
    """Which object an error is about; clients such as kubectl print these."""

    name: str = ""
    group: str = ""
    kind: str = ""
    causes: list[Cause] = field(default_factory=list)
    # How long a client should wait before retrying (`Retry-After` in seconds), or 0.
    retry_after_seconds: int = 0


class ApiError(Exception):
    """An error the server answers with a `Status` body and the HTTP code it carries."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: Details | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASON_BY_CODE.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        return status_object(self.code, self.message, self.reason, self.details)


def status_object(
    code: int, message: str, reason: str, details: Details | None = None
) -> dict[str, Any]:
    """A `metav1.Status`; `Success` for 2xx, as the API conventions define."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 300 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if code < 300:
        del body["reason"]
    if details is not None:
        out: dict[str, Any] = {}
        if details.name:
            out["name"] = details.name
        if details.group:
            out["group"] = details.group
        if details.kind:
            out["kind"] = details.kind
        if details.causes:
            out["causes"] = [_cause(c) for c in details.causes]
        if details.retry_after_seconds:
            out["retryAfterSeconds"] = details.retry_after_seconds
        body["details"] = out
    return body


def _cause(c: Cause) -> dict[str, str]:
    """A `StatusCause`; `field` is omitted when empty, as the server's JSON omits it."""
    out = {"reason": c.reason, "message": c.message}
    if c.field:
        out["field"] = c.field
    return out


def resource_label(group: str, plural: str) -> str:
    """`deployments.apps` / `configmaps`: how the real server names a resource in messages."""
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        404,
        f'{resource_label(group, plural)} "{name}" not found',
        details=Details(name=name, group=group, kind=plural),
    )


def already_exists(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{resource_label(group, plural)} "{name}" already exists',
        reason="AlreadyExists",
        details=Details(name=name, group=group, kind=plural),
    )


def conflict(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {resource_label(group, plural)} "{name}": '
        "the object has been modified; please apply your changes to the latest version "
        "and try again",
        reason="Conflict",
        details=Details(name=name, group=group, kind=plural),
    )


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    summary = "; ".join(f"{c.field}: {c.message}" for c in causes)
    return ApiError(
        422,
        f'{kind}{"." + group if group else ""} "{name}" is invalid: {summary}',
        reason="Invalid",
        details=Details(name=name, group=group, kind=kind, causes=causes),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def expired(message: str) -> ApiError:
    return ApiError(410, message, reason="Expired")


def too_large_resource_version(requested: int, current: int) -> ApiError:
    """504 for a read at a resourceVersion the server has not reached, as the real server
    answers once its wait for it runs out: clients (reflectors) retry after a second."""
    return ApiError(
        504,
        f"Timeout: Too large resource version: {requested}, current: {current}",
        reason="Timeout",
        details=Details(
            causes=[Cause("", "ResourceVersionTooLarge", "Too large resource version")],
            retry_after_seconds=1,
        ),
    )
