"""Client-side consumer filters match subjects exactly as nats-server's filters do."""

from __future__ import annotations

import pytest

from gati_runtime.subject_filter import subject_filter

RECONCILER = (
    "gati.cr.gatihandler.*.*",
    "gati.cr.gatimodule.*.*",
    "gati.cr.gativersion.*.*",
    "gati.owned.deployment.*.*",
)


@pytest.mark.parametrize(
    ("filters", "subject", "expected"),
    [
        (RECONCILER, "gati.cr.gatihandler.default.api", True),
        (RECONCILER, "gati.owned.deployment.default.api", True),
        (RECONCILER, "gati.status.gatihandler.default.api", False),
        (RECONCILER, "gati.routes.default.api", False),
        (RECONCILER, "gati.cr.gatihandler.default", False),  # '*' is exactly one token
        (RECONCILER, "gati.cr.gatihandler.default.api.extra", False),
        (RECONCILER, "gati.cr.gatihandlers.default.api", False),  # whole tokens only
        (("gati.cr.>",), "gati.cr.gatihandler.default.api", True),
        (("gati.cr.>",), "gati.cr.x", True),
        (("gati.cr.>",), "gati.cr", False),  # '>' is one token or more
        (("gati.*.>",), "gati.owned.deployment.a.b", True),
        (("a+b.(c)",), "a+b.(c)", True),  # no regular-expression characters leak through
        (("a+b.(c)",), "aab.(c)", False),
        (("ab*.c",), "abx.c", False),  # a wildcard only as a whole token
        (("ab*.c",), "ab*.c", True),
        ((">",), "anything.at.all", True),
    ],
)
def test_matches_as_the_server_does(filters: tuple[str, ...], subject: str, expected: bool) -> None:
    assert subject_filter(filters)(subject) is expected


@pytest.mark.parametrize(
    ("filters", "error"),
    [
        ((), "at least one"),
        (("gati..cr",), "empty token"),
        (("gati.cr.",), "empty token"),
        (("gati.>.cr",), "last token"),
    ],
)
def test_a_filter_the_server_would_refuse_is_named(filters: tuple[str, ...], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        subject_filter(filters)
