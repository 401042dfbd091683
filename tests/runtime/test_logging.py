"""Every log line of one message's processing must carry its event id, object key and trace."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from gati_runtime.logging import configure_logging, message_context, trace_id

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    yield out
    structlog.reset_defaults()
    root.handlers[:], level = saved
    root.setLevel(level)


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_message_context_reaches_structlog_and_stdlib_lines(json_log: io.StringIO) -> None:
    with message_context(
        event_id="uid-1:42", object_key="gati.cr.gatihandler.default.api", traceparent=TRACEPARENT
    ):
        structlog.get_logger("svc").info("reconciled", replicas=2)
        logging.getLogger("nats.aio.client").warning("library line")
    structlog.get_logger("svc").info("outside")

    inside, library, outside = _lines(json_log)
    for line in (inside, library):
        assert line["event_id"] == "uid-1:42"
        assert line["object_key"] == "gati.cr.gatihandler.default.api"
        assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert inside["replicas"] == 2
    assert inside["level"] == "info"
    assert library["event"] == "library line"
    assert "event_id" not in outside


def test_a_nested_message_context_gives_back_the_outer_one() -> None:
    with structlog.contextvars.bound_contextvars(service="reconciler"):
        with message_context(event_id="outer", object_key="a", traceparent=None, attempt=1):
            with message_context(event_id="inner", object_key="b", traceparent=TRACEPARENT):
                assert structlog.contextvars.get_contextvars()["event_id"] == "inner"
            assert structlog.contextvars.get_contextvars() == {
                "service": "reconciler",
                "event_id": "outer",
                "object_key": "a",
                "trace_id": None,
                "attempt": 1,
            }
        assert structlog.contextvars.get_contextvars() == {"service": "reconciler"}


def test_a_message_context_is_given_back_when_its_block_raises() -> None:
    with structlog.contextvars.bound_contextvars(service="reconciler"):
        with (
            pytest.raises(RuntimeError, match="handler failed"),
            message_context(event_id="e", object_key="a", traceparent=TRACEPARENT),
        ):
            raise RuntimeError("handler failed")
        assert structlog.contextvars.get_contextvars() == {"service": "reconciler"}


def test_a_message_context_and_structlog_bind_one_variable_per_key() -> None:
    """Set directly, a field must be structlog's own variable: one of the same name beside it
    would be merged in an undefined order, and a binding of the key would not override it."""
    before = structlog.contextvars.get_contextvars()
    with message_context(event_id="e", object_key="a", traceparent=None, stream_seq=7):
        with structlog.contextvars.bound_contextvars(object_key="b", stream_seq=8):
            assert structlog.contextvars.get_contextvars() == before | {
                "event_id": "e",
                "object_key": "b",
                "trace_id": None,
                "stream_seq": 8,
            }
        assert structlog.contextvars.get_contextvars()["object_key"] == "a"
        structlog.contextvars.unbind_contextvars("stream_seq")
        assert "stream_seq" not in structlog.contextvars.get_contextvars()
    assert structlog.contextvars.get_contextvars() == before


def test_level_filters_debug(json_log: io.StringIO) -> None:
    structlog.get_logger().debug("noise")
    assert json_log.getvalue() == ""


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736a-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473\u0130-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473\uff10-00f067aa0ba902b7-01",
    ],
)
def test_malformed_traceparent_gives_no_trace_id(header: str | None) -> None:
    assert trace_id(header) is None


def test_trace_id_is_normalised_to_lowercase() -> None:
    assert trace_id(TRACEPARENT.upper()) == "4bf92f3577b34da6a3ce929d0e0e4736"
