"""The API server's timestamps: RFC 3339 in UTC at whole seconds (`metav1.Time`).

Every write stamps at least one (creationTimestamp, a managedFields entry's time), and
formatting a datetime costs more than the rest of a small write's bookkeeping; at second
precision the text only changes once a second, so it is formatted once a second.
"""

from __future__ import annotations

import time

_last: tuple[int, str] = (-1, "")


def now_rfc3339() -> str:
    global _last
    second = int(time.time())
    if second != _last[0]:
        _last = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _last[1]
