"""A direct get's answer is read with nats-py's answers and errors (pure: no server needed)."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.js.errors import APIError, ServiceUnavailableError

from gati_runtime.direct_get import stored


def _answer(data: bytes, headers: dict[str, str] | None) -> Msg:
    return Msg(_client=None, subject="_INBOX.x.1", data=data, headers=headers)  # type: ignore[arg-type]


def test_a_stored_message_is_the_answer_and_none_is_a_404() -> None:
    found = _answer(b"{}", {"Nats-Sequence": "7", "Nats-Subject": "gati.x"})
    assert stored(found) is found
    assert stored(_answer(b"", {"Status": "404", "Description": "Message Not Found"})) is None


def test_nobody_serving_the_stream_and_other_statuses_raise_as_nats_py() -> None:
    with pytest.raises(NoRespondersError):
        stored(_answer(b"", {"Status": "503"}))
    with pytest.raises(APIError) as raised:
        stored(_answer(b"", {"Status": "408", "Description": "Request Timeout"}))
    assert (raised.value.code, raised.value.description) == (408, "Request Timeout")
    assert not isinstance(raised.value, ServiceUnavailableError)
