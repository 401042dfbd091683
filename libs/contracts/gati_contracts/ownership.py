"""Names and controller references of the objects the services create for a gati.dev resource.

Reconciler, scaler and timescape all need the Deployment's name and the ownerReference that
ties an object to its resource, and services never import each other: the spelling lives here
so every service derives the same name and the same owner from the same resource.

A gati.dev object name is a DNS-1123 subdomain (dots allowed, may start with a digit), but a
Service name must be an RFC 1035 label (no dots, starts with a letter), and a derived name with
a suffix may outgrow 63 characters. Every owned object therefore gets its name from
`owned_name`, which keeps a valid name as it is and otherwise re-spells it and appends a digest
of the original, so two different inputs never end on the same name.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, Final

from gati_contracts.problems import FieldProblem

if TYPE_CHECKING:
    from gati_contracts.meta import CustomResource

MAX_NAME_LENGTH: Final = 63
_RFC1035_LABEL: Final = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_NOT_NAME_CHARS: Final = re.compile(r"[^a-z0-9-]+")
_DIGEST_LENGTH: Final = 8


class OwnershipError(ValueError):
    """The resource cannot own objects as given; `problem` names the field and the fix."""

    def __init__(self, problem: FieldProblem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def short_digest(text: str, length: int) -> str:
    """The first `length` hex digits of SHA-256 of `text`: a suffix that keeps shortened or
    re-spelled names distinct (10 digits = 40 bits, collisions need ~10^6 inputs per name).

    SHA-256 rather than Python's `hash()`: the value must be the same in every process and
    every release, or replicas would disagree on names."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def is_rfc1035_label(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and _RFC1035_LABEL.fullmatch(name) is not None


def owned_name(base: str, suffix: str = "") -> str:
    """`base + suffix` when that is a valid RFC 1035 label, else `<respelled>-<digest><suffix>`.

    `suffix` (such as `-env`) must itself be lowercase letters, digits and '-'; it is kept
    whole so related objects stay recognisable after shortening.
    """
    if _NOT_NAME_CHARS.search(suffix) or len(suffix) > MAX_NAME_LENGTH // 2:
        raise ValueError(f"name suffix {suffix!r} must be a few lowercase letters, digits or '-'")
    wanted = base + suffix
    if is_rfc1035_label(wanted):
        return wanted
    stem = _NOT_NAME_CHARS.sub("-", base.lower()).strip("-")
    if not stem[:1].isalpha():
        stem = f"g-{stem}" if stem else "g"
    room = MAX_NAME_LENGTH - len(suffix) - _DIGEST_LENGTH - 1
    return f"{stem[:room].rstrip('-')}-{short_digest(wanted, _DIGEST_LENGTH)}{suffix}"


def controller_reference(resource: CustomResource) -> dict[str, Any]:
    """A controller reference: garbage collection deletes the objects with the resource, and
    `blockOwnerDeletion` keeps foreground deletion waiting until they are gone.

    Raises `OwnershipError` when the resource has no uid (it was not read from the API server).
    """
    uid = resource.metadata.uid
    if uid is None:
        raise OwnershipError(
            FieldProblem(
                "metadata.uid",
                "is required to own objects; render the object as the API server returned it",
            )
        )
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "name": resource.metadata.name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
