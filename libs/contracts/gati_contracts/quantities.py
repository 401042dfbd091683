"""Kubernetes resource quantities (`500m`, `128Mi`, `1.5`, `2Gi`), checked and parsed in one place.

The syntax is the API server's own (`resource.Quantity`), so a value the operator accepts is one
the Deployment it writes will accept too; `parse_quantity` gives other services a number to
compare (requests against limits, CPU targets) without re-implementing the suffix rules.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

# Same expression the Kubernetes API server and controller-gen put into CRDs for a Quantity.
QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
QUANTITY_HINT: Final = "must be a Kubernetes quantity such as 128Mi or 500m"

_WHOLE: Final = re.compile(QUANTITY_PATTERN)
_NUMBER: Final = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_SUFFIX_FACTOR: Final[dict[str, Decimal]] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(text: str) -> Decimal:
    """Return the exact value of `text` (`"500m"` → 0.5), raising `ValueError` when malformed.

    Decimal, not float: `128Mi` and `0.1` must compare exactly against other quantities.
    """
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"{text!r} {QUANTITY_HINT}")
    number = _NUMBER.match(text)
    assert number is not None  # the full pattern starts with the same number form
    suffix = text[number.end() :]
    try:
        value = Decimal(number.group())
        if suffix[:1] in ("e", "E") and suffix not in _SUFFIX_FACTOR:
            return value.scaleb(int(Decimal(suffix[1:])))
    except (InvalidOperation, ValueError) as error:
        raise ValueError(f"{text!r} {QUANTITY_HINT}") from error
    return value * _SUFFIX_FACTOR[suffix]
