"""The retry policy, as urllib3 read kube_config.API_RETRIES (and a client's other settings)."""

from __future__ import annotations

import email.utils
import time

import pytest
import urllib3

from gati_runtime.kube_config import API_RETRIES
from gati_runtime.kube_retry import NOTHING_SPENT, RetryPolicy, Spent


def pauses(
    policy: RetryPolicy, method: str, code: int, retry_after: str | None = None
) -> list[float]:
    """Every pause the policy allows for one call that keeps getting `code`."""
    out: list[float] = []
    spent = NOTHING_SPENT
    while (decision := policy.after_answer(method, code, retry_after, spent)) is not None:
        pause, spent = decision
        out.append(pause)
    return out


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("code", [429, 500, 502, 503, 504])
def test_a_transient_answer_to_a_safe_verb_is_retried_three_times_with_backoff(
    method: str, code: int
) -> None:
    assert pauses(RetryPolicy(API_RETRIES), method, code) == [0.0, 0.1, 0.2]


def test_a_post_is_never_sent_again_after_an_answer_or_a_lost_one() -> None:
    policy = RetryPolicy(API_RETRIES)
    assert pauses(policy, "POST", 503) == []
    assert policy.after_read_error("POST", NOTHING_SPENT) is None


@pytest.mark.parametrize("code", [200, 400, 404, 409, 422])
def test_an_answer_that_describes_the_request_is_final(code: int) -> None:
    assert pauses(RetryPolicy(API_RETRIES), "GET", code) == []


def test_retry_after_sets_the_pause_in_seconds_or_as_a_date() -> None:
    policy = RetryPolicy(API_RETRIES)
    assert pauses(policy, "GET", 429, "2") == [2.0, 2.0, 2.0]
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert all(25 < pause <= 30 for pause in pauses(policy, "GET", 503, date))
    # A value nobody can read falls back to the policy's own pauses.
    assert pauses(policy, "GET", 503, "soon") == [0.0, 0.1, 0.2]


def test_retry_after_alone_makes_413_retryable_as_urllib3_does() -> None:
    assert pauses(RetryPolicy(API_RETRIES), "PUT", 413, "1") == [1.0, 1.0, 1.0]
    assert pauses(RetryPolicy(API_RETRIES), "PUT", 413) == []


def test_backoff_is_capped_and_the_total_bounds_every_kind() -> None:
    policy = RetryPolicy(
        urllib3.Retry(
            total=6, status=6, status_forcelist=(500,), backoff_factor=0.5, backoff_max=1.5
        )
    )
    assert pauses(policy, "GET", 500) == [0.0, 1.0, 1.5, 1.5, 1.5, 1.5]
    spent = Spent(total=6, status=6)
    assert policy.after_connect_error(spent) is None


def test_a_connection_that_could_not_be_made_is_retried_for_any_verb() -> None:
    policy = RetryPolicy(API_RETRIES)
    spent = NOTHING_SPENT
    made = 0
    while (decision := policy.after_connect_error(spent)) is not None:
        _, spent = decision
        made += 1
    assert (made, spent.connect) == (3, 3)


def test_a_read_error_is_retried_only_with_a_read_budget() -> None:
    assert RetryPolicy(API_RETRIES).after_read_error("GET", NOTHING_SPENT) is None  # read=0
    default = RetryPolicy(None)  # the official client's pool default: urllib3's Retry(3)
    assert default.after_read_error("GET", NOTHING_SPENT) == (0.0, Spent(total=1, read=1))
    assert default.after_read_error("POST", NOTHING_SPENT) is None
    assert pauses(default, "GET", 503) == []  # no status list: answers are final


def test_retries_false_or_zero_retry_nothing() -> None:
    for retries in (False, 0):
        policy = RetryPolicy(retries)
        assert policy.after_connect_error(NOTHING_SPENT) is None
        assert policy.after_read_error("GET", NOTHING_SPENT) is None
        assert pauses(policy, "GET", 503, "1") == []
