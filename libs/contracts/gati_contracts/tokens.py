"""The one reversible encoding of arbitrary strings into NATS subject tokens.

Kubernetes names may contain `.` and handler paths contain `/`, while a NATS token may not
contain `.`, `*`, `>` or whitespace. `[a-z0-9-]` stays as it is, so typical names read the same
in a subject as in kubectl; every other byte of the UTF-8 form becomes `_XX` (lowercase hex),
`_` included, so decoding is unambiguous. The empty string becomes `_`, which no other string
can produce, because a token must never be empty.
"""

from __future__ import annotations

import re
from typing import Final

EMPTY_TOKEN: Final = "_"
_PLAIN: Final = re.compile(r"[a-z0-9-]+")
_PLAIN_BYTES: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-")
_HEX: Final = frozenset("0123456789abcdef")


class TokenError(ValueError):
    pass


def encode_token(text: str) -> str:
    """Encode any string (valid Unicode) as one subject token; the identity for most names."""
    if _PLAIN.fullmatch(text):
        return text
    if not text:
        return EMPTY_TOKEN
    return "".join(
        chr(byte) if byte in _PLAIN_BYTES else f"_{byte:02x}" for byte in text.encode("utf-8")
    )


def decode_token(token: str) -> str:
    """Invert `encode_token`; only its exact output is accepted, so each string has one token."""
    if _PLAIN.fullmatch(token):
        return token
    if token == EMPTY_TOKEN:
        return ""
    out = bytearray()
    index = 0
    while index < len(token):
        char = token[index]
        if char == "_":
            digits = token[index + 1 : index + 3]
            if len(digits) != 2 or not set(digits) <= _HEX:
                raise TokenError(f"token {token!r}: '_' must precede two lowercase hex digits")
            byte = int(digits, 16)
            if byte in _PLAIN_BYTES:
                raise TokenError(f"token {token!r}: {chr(byte)!r} must not be escaped")
            out.append(byte)
            index += 3
        elif ord(char) in _PLAIN_BYTES:
            out.append(ord(char))
            index += 1
        else:
            raise TokenError(f"token {token!r}: {char!r} must be escaped as _XX")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TokenError(f"token {token!r}: escapes do not form UTF-8 text") from error
