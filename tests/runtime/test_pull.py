"""JetStream pull requests as the consumer loop sends them, and the statuses that end them."""

from __future__ import annotations

import json

import pytest

from gati_runtime.pull import (
    PullEnd,
    Status,
    first_to_come,
    next_subject,
    pending_now,
    status_of,
)


def test_requests_are_what_the_server_reads() -> None:
    assert next_subject("GATI", "reconciler") == "$JS.API.CONSUMER.MSG.NEXT.GATI.reconciler"
    assert json.loads(pending_now(5)) == {"batch": 5, "no_wait": True}
    assert json.loads(first_to_come(1, 2.5)) == {"batch": 1, "expires": 2_500_000_000}


@pytest.mark.parametrize("batch", [0, -1])
def test_a_batch_must_be_at_least_one(batch: int) -> None:
    with pytest.raises(ValueError, match="batch must be at least 1"):
        pending_now(batch)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        first_to_come(batch, 1.0)


def test_expires_must_be_positive() -> None:
    with pytest.raises(ValueError, match="expires must be positive"):
        first_to_come(1, 0)


def test_a_delivered_message_is_never_a_status() -> None:
    """A stored message may carry a header named Status; a delivery has its ack subject."""
    assert status_of("$JS.ACK.GATI.d.1.10.10.1700000000000000000.0", {"Status": "404"}) is None
    assert status_of("", None) is None
    assert status_of("", {"Nats-Msg-Id": "x"}) is None
    assert status_of("", {"Status": "408", "Description": "Request Timeout"}) == Status(
        "408", "Request Timeout"
    )


@pytest.mark.parametrize(
    ("code", "description", "end"),
    [
        ("100", "Idle Heartbeat", PullEnd.IGNORED),
        ("404", "No Messages", PullEnd.ENDED),
        ("408", "Request Timeout", PullEnd.ENDED),
        ("409", "Leadership Change", PullEnd.ENDED),
        ("409", "Exceeded MaxWaiting", PullEnd.FAILED),
        ("409", "Exceeded MaxAckPending", PullEnd.FAILED),
        ("409", "Consumer Deleted", PullEnd.FAILED),
        ("409", "Consumer is push based", PullEnd.FAILED),
        ("503", "", PullEnd.FAILED),
        ("400", "Bad Request", PullEnd.FAILED),
    ],
)
def test_what_a_status_means_for_its_request(code: str, description: str, end: PullEnd) -> None:
    assert Status(code, description).end is end
