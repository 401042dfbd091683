"""Reading a status message's code, as the pull loop, stream reads and publish acks do."""

from __future__ import annotations

from gati_runtime.nats_status import NO_RESPONDERS, NOT_FOUND, status_code


def test_a_status_message_gives_its_code() -> None:
    assert status_code({"Status": "404", "Description": "Message Not Found"}) == NOT_FOUND
    assert status_code({"Status": "503"}) == NO_RESPONDERS


def test_a_message_without_a_status_gives_none() -> None:
    assert status_code(None) is None
    assert status_code({}) is None
    assert status_code({"Nats-Msg-Id": "x"}) is None
