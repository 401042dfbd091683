"""Names of the objects the reconciler creates: valid everywhere, stable, and distinct.

A gati.dev object name is a DNS-1123 subdomain (dots allowed, may start with a digit), but a
Service name must be an RFC 1035 label (no dots, starts with a letter), and a derived name with
a suffix may outgrow 63 characters. Every owned object therefore gets its name from
`owned_name`, which keeps a valid name as it is and otherwise re-spells it and appends a digest
of the original, so two different inputs never end on the same name.
"""

from __future__ import annotations

import re
from typing import Final

from gati_reconciler.hashing import short_digest

MAX_NAME_LENGTH: Final = 63
_RFC1035_LABEL: Final = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_NOT_NAME_CHARS: Final = re.compile(r"[^a-z0-9-]+")
_DIGEST_LENGTH: Final = 8


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
