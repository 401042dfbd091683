"""A publish's reply is read with nats-py's answers and errors, or as an outcome that never
raises (pure: no server needed)."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg
from nats.js.api import PubAck
from nats.js.errors import (
    APIError,
    BadRequestError,
    NoStreamResponseError,
    ServiceUnavailableError,
)

from gati_runtime.pub_ack import (
    WRONG_LAST_SEQUENCE,
    JetStreamError,
    PubAckReply,
    pub_ack,
    read_pub_ack,
)


def _reply(data: bytes, headers: dict[str, str] | None = None) -> Msg:
    return Msg(_client=None, subject="_INBOX.x.1", data=data, headers=headers)  # type: ignore[arg-type]


def test_a_stored_message_and_a_duplicate_read_as_their_pub_ack() -> None:
    assert pub_ack(_reply(b'{"stream":"GATI","seq":7}')) == PubAck(stream="GATI", seq=7)
    duplicate = pub_ack(_reply(b'{"stream":"GATI","seq":7,"duplicate":true,"later":1}'))
    assert duplicate == PubAck(stream="GATI", seq=7, duplicate=True)


def test_a_wrong_last_sequence_keeps_its_code_and_error_code() -> None:
    error = b'{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}'
    with pytest.raises(BadRequestError) as raised:
        pub_ack(_reply(b'{"type":"io.nats.jetstream.api.v1.pub_ack",' + error[1:]))
    assert (raised.value.code, raised.value.err_code) == (400, 10071)
    assert raised.value.description == "wrong last sequence: 3"


def test_other_server_errors_keep_their_types() -> None:
    with pytest.raises(ServiceUnavailableError):
        pub_ack(_reply(b'{"error":{"code":503,"err_code":10008,"description":"no leader"}}'))
    with pytest.raises(APIError) as raised:
        pub_ack(_reply(b'{"error":{"code":413,"err_code":10054,"description":"too large"}}'))
    assert (raised.value.code, raised.value.err_code) == (413, 10054)


def test_no_stream_on_the_subject_is_no_stream_response() -> None:
    with pytest.raises(NoStreamResponseError):
        pub_ack(_reply(b"", {"Status": "503"}))


def test_a_reply_that_is_no_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="JSON"):
        pub_ack(_reply(b"not json"))


def test_read_pub_ack_gives_every_outcome_without_raising() -> None:
    stored = read_pub_ack(_reply(b'{"stream":"GATI","seq":7,"later":{"x":1}}'))
    assert stored == PubAckReply(stream="GATI", seq=7)
    duplicate = read_pub_ack(_reply(b'{"stream":"GATI","seq":7,"duplicate":true}'))
    assert duplicate is not None
    assert duplicate.duplicate
    refused = read_pub_ack(
        _reply(b'{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}')
    )
    assert refused is not None
    assert refused.error == JetStreamError(400, 10071, "wrong last sequence: 3")
    assert refused.error.err_code in WRONG_LAST_SEQUENCE


def test_read_pub_ack_tells_a_reply_that_is_no_pub_ack_by_none() -> None:
    assert read_pub_ack(_reply(b"", {"Status": "503"})) is None  # no stream listens
    assert read_pub_ack(_reply(b"not json")) is None
    assert read_pub_ack(_reply(b'{"seq":"seven"}')) is None
    with pytest.raises(ValueError, match="no JSON PubAck"):
        pub_ack(_reply(b'{"seq":"seven"}'))
