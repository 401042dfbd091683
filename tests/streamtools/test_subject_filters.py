"""Which filters a read leaves to the server: NATS wildcard rules, checked without a server."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gati_contracts.subjects import STREAM_SUBJECTS
from gati_runtime.subject_filter import subject_matches
from gati_streamtools.subject_filters import (
    WHOLE_STREAM,
    ReadPlan,
    covering_pattern,
    plan_read,
)


def test_subject_matching_follows_nats_wildcards() -> None:
    assert subject_matches("gati.cr.>", "gati.cr.a.b.c")
    assert not subject_matches("gati.cr.>", "gati.cr")
    assert subject_matches("a.*.c", "a.b.c")
    assert not subject_matches("a.*.c", "a.b.c.d")


@pytest.mark.parametrize(
    ("wide", "narrow", "covers"),
    [
        ("gati.>", "gati.cr.>", True),
        ("gati.cr.>", "gati.>", False),
        ("gati.*.x", "gati.cr.x", True),
        ("gati.cr.x", "gati.*.x", False),
        ("gati.*.>", "gati.cr.*.y", True),
        ("gati.*", "gati.>", False),
        ("a.b", "a.b.c", False),
        (">", "gati.>", True),
    ],
)
def test_pattern_cover_follows_the_wildcards(wide: str, narrow: str, covers: bool) -> None:
    assert subject_matches(wide, narrow) is covers


@pytest.mark.parametrize(
    ("filters", "cover"),
    [
        (["gati.cr.gatihandler.>", "gati.cr.gatimodule.>"], "gati.cr.*.>"),
        (["a.b", "a.b.c"], "a.>"),
        (["a.b.c", "a.x.c"], "a.*.c"),
        (["a.b.c"], "a.b.c"),
        (["gati.cr.>", "gati.owned.x.y.z"], "gati.*.>"),
    ],
)
def test_the_cover_is_the_narrowest_single_pattern(filters: list[str], cover: str) -> None:
    assert covering_pattern(filters) == cover


_TOKEN = st.sampled_from(["a", "b", "*"])
_PATTERN = st.builds(
    lambda head, tail: ".".join(head + tail),
    st.lists(_TOKEN, min_size=1, max_size=4),
    st.sampled_from([[], [">"]]),
)
_SUBJECT = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=6).map(".".join)


@given(_PATTERN, _PATTERN, _SUBJECT)
def test_a_pattern_covering_another_matches_whatever_it_matches(
    wide: str, narrow: str, subject: str
) -> None:
    if subject_matches(wide, narrow) and subject_matches(narrow, subject):
        assert subject_matches(wide, subject)


@given(st.lists(_PATTERN, min_size=1, max_size=4), _SUBJECT)
def test_the_cover_matches_whatever_a_filter_matches(filters: list[str], subject: str) -> None:
    cover = covering_pattern(filters)
    assert all(subject_matches(cover, f) for f in filters)
    if any(subject_matches(f, subject) for f in filters):
        assert subject_matches(cover, subject)


@given(st.lists(_PATTERN, min_size=1, max_size=4), _SUBJECT)
def test_a_plan_reads_exactly_the_filters(filters: list[str], subject: str) -> None:
    """Server filter and client check together keep exactly what the filters match of what
    the stream holds."""
    stream = ["a.>", "b.>", "c.>"]
    assume(any(subject_matches(s, subject) for s in stream))
    plan = plan_read(filters, stream)
    served = any(subject_matches(f, subject) for f in plan.server_filters)
    assert (served and plan.wants(subject)) is any(subject_matches(f, subject) for f in filters)


_ANY_SUBJECT = st.lists(st.sampled_from(["a", "b", ">", "*", "", "a+b", "(a)"]), max_size=6).map(
    ".".join
)


@given(st.lists(_PATTERN | _ANY_SUBJECT.filter(bool), min_size=1, max_size=4), _ANY_SUBJECT)
def test_the_client_check_matches_as_subject_matching_does(
    filters: list[str], subject: str
) -> None:
    """Compiled into one expression, the filters still take exactly what `subject_matches`
    takes, odd tokens (regex metacharacters, empty, wildcards in the subject) included."""
    plan = ReadPlan(server_filters=(WHOLE_STREAM,), client_filters=tuple(filters))
    assert plan.wants(subject) is any(subject_matches(f, subject) for f in filters)


def test_a_services_subjects_are_read_through_their_cover_and_matched_here() -> None:
    plan = plan_read(["gati.cr.gatihandler.>", "gati.cr.gatimodule.>"], STREAM_SUBJECTS)
    assert plan == ReadPlan(
        server_filters=("gati.cr.*.>",),
        client_filters=("gati.cr.gatihandler.>", "gati.cr.gatimodule.>"),
    )
    assert plan.wants("gati.cr.gatihandler.shop.orders")
    assert not plan.wants("gati.cr.gativersion.shop.orders-v1")


def test_the_whole_stream_is_read_without_a_filter() -> None:
    assert plan_read(list(STREAM_SUBJECTS), STREAM_SUBJECTS) == ReadPlan((WHOLE_STREAM,), None)
    assert plan_read(["gati.>"], STREAM_SUBJECTS) == ReadPlan((WHOLE_STREAM,), None)
    metrics = plan_read(["gati.metrics.traffic.>"], ["gati.metrics.traffic.>"])
    assert metrics == ReadPlan((WHOLE_STREAM,), None)


def test_one_objects_subjects_stay_filtered_on_the_server() -> None:
    subjects = ["gati.cr.gatihandler.shop.orders", "gati.status.gatihandler.shop.orders"]
    assert plan_read(subjects, STREAM_SUBJECTS) == ReadPlan(tuple(subjects), None)
    assert plan_read(subjects[:1], STREAM_SUBJECTS) == ReadPlan(tuple(subjects[:1]), None)
    assert plan_read(subjects * 2, STREAM_SUBJECTS) == ReadPlan(tuple(subjects), None)


@pytest.mark.parametrize("filters", [[], ["gati.cr.>", ""]])
def test_a_read_without_filters_is_refused(filters: list[str]) -> None:
    with pytest.raises(ValueError, match="filter"):
        plan_read(filters, STREAM_SUBJECTS)
