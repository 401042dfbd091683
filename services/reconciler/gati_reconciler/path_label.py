"""A handler path as a label value, so `kubectl get deploy -l gati.dev/handler-path=…` works.

Label values allow at most 63 of `[-A-Za-z0-9_.]`, starting and ending alphanumeric; paths allow
far more. The encoding stays readable for the common case (`/api/users` → `api.users`) and is
one-to-one: a path whose readable form does not decode back to exactly that path (dots, odd
characters, trailing slash, the root, length) gets a digest of the exact path appended. Only a
digest collision (40 bits) could map two paths to one value; the exact path is always kept in
the `gati.dev/handler-path` annotation for anyone who needs it back.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from gati_contracts.ownership import short_digest

_MAX_LENGTH: Final = 63
_DIGEST_LENGTH: Final = 10
_NOT_LABEL_CHARS: Final = re.compile(r"[^-A-Za-z0-9_.]+")
_EDGE_JUNK: Final = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
ROOT_LABEL: Final = "root"


@lru_cache(maxsize=4096)
def path_label_value(path: str) -> str:
    """Remembered per path: every render of a handler asks again for the same path."""
    readable = _EDGE_JUNK.sub("", _NOT_LABEL_CHARS.sub("_", path.replace("/", ".")))
    readable = readable or ROOT_LABEL
    if len(readable) <= _MAX_LENGTH and "/" + readable.replace(".", "/") == path:
        return readable
    room = _MAX_LENGTH - _DIGEST_LENGTH - 1
    stem = _EDGE_JUNK.sub("", readable[:room]) or ROOT_LABEL
    return f"{stem}-{short_digest(path, _DIGEST_LENGTH)}"
