"""Requests on an inbox of one's own answer as nats-py's request does, against a real server."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import TimeoutError as NatsTimeoutError

from gati_runtime.nats_status import NO_RESPONDERS, status_code
from gati_runtime.replies import Replies


async def _echo(message: Msg) -> None:
    """A responder that answers each request with its payload and its `Echo` header."""
    await message.respond(message.data + (message.headers or {}).get("Echo", "").encode())


async def test_requests_sent_together_each_get_their_own_answer(nats_client: Client) -> None:
    responder = await nats_client.subscribe("echo", cb=_echo)
    replies = Replies(nats_client, timeout=10.0)
    asked = [await replies.ask("echo", f"{i}:".encode(), {"Echo": str(i)}) for i in range(20)]
    answers = await asyncio.gather(*asked)
    assert [answer.data for answer in answers] == [f"{i}:{i}".encode() for i in range(20)]
    assert (await replies.request("echo", b"again")).data == b"again"
    await responder.unsubscribe()


async def test_a_request_nobody_serves_gets_the_no_responders_status(nats_client: Client) -> None:
    """What the status means is the caller's: the reply itself comes back, as a message."""
    answer = await Replies(nats_client, timeout=10.0).request("nobody.listens", b"")
    assert status_code(answer.headers) == NO_RESPONDERS


async def test_an_unanswered_request_times_out_and_a_cancelled_one_is_forgotten(
    nats_client: Client,
) -> None:
    silent = await nats_client.subscribe("silent")
    replies = Replies(nats_client, timeout=0.05)
    with pytest.raises(NatsTimeoutError):
        await replies.request("silent", b"")
    cancelled = await replies.ask("silent", b"")
    cancelled.cancel()
    responder = await nats_client.subscribe("echo", cb=_echo)
    forgotten = await replies.ask("echo", b"late")
    forgotten.cancel()  # its answer, when it comes, is dropped without a trace
    assert (await replies.request("echo", b"still")).data == b"still"
    await silent.unsubscribe()
    await responder.unsubscribe()


async def test_a_request_may_wait_shorter_than_the_owners_timeout(nats_client: Client) -> None:
    silent = await nats_client.subscribe("silent")
    replies = Replies(nats_client, timeout=600.0)
    with pytest.raises(NatsTimeoutError):
        await (await replies.ask("silent", b"", wait=0.05))  # not the owner's 600 s
    await silent.unsubscribe()


async def test_a_request_that_cannot_be_sent_raises_and_leaves_nothing_waiting(
    nats_client: Client,
) -> None:
    replies = Replies(nats_client, timeout=0.05)
    await replies.request("nobody.listens", b"")  # the inbox exists
    await nats_client.close()
    with pytest.raises(ConnectionClosedError):
        await replies.ask("echo", b"")
