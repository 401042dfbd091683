"""Publishing survives a NATS outage without storing anything twice."""

from __future__ import annotations

import asyncio

import pytest

from fixtures.nats_server import PrivateBus
from gati_contracts.headers import MSG_ID
from gati_contracts.subjects import STREAM
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.publisher import PublishAbandonedError, Publisher

SUBJECT = "gati.cr.gatihandler.default.api"
WAIT = 20.0


async def test_same_id_is_stored_once(gati_connection: NatsConnection) -> None:
    publisher = Publisher(gati_connection)
    first = await publisher.publish(SUBJECT, b"{}", {MSG_ID: "uid-1:7"})
    again = await publisher.publish(SUBJECT, b"{}", {MSG_ID: "uid-1:7"})
    assert not first.duplicate
    assert again.duplicate
    assert again.seq == first.seq


async def test_refuses_to_retry_without_a_message_id(gati_connection: NatsConnection) -> None:
    with pytest.raises(ValueError, match="header Nats-Msg-Id is required"):
        await Publisher(gati_connection).publish(SUBJECT, b"{}", {})


async def test_publish_during_an_outage_lands_once_when_nats_is_back(
    private_bus: PrivateBus,
) -> None:
    server, connection = private_bus.server, private_bus.connection
    server.stop()
    publisher = Publisher(connection, attempt_timeout=0.3)
    pending = asyncio.create_task(publisher.publish(SUBJECT, b"{}", {MSG_ID: "uid-2:1"}))
    await asyncio.sleep(1.0)  # let several attempts fail while the server is down
    assert not pending.done()
    server.start()
    ack = await asyncio.wait_for(pending, WAIT)
    info = await connection.jsm.stream_info(STREAM)
    assert info.state.messages == 1
    assert ack.seq == 1


async def test_shutdown_abandons_a_publish_that_cannot_land(private_bus: PrivateBus) -> None:
    server, connection = private_bus.server, private_bus.connection
    server.stop()
    stop = asyncio.Event()
    stop.set()
    publisher = Publisher(connection, attempt_timeout=0.2)
    with pytest.raises(PublishAbandonedError, match="abandoned at shutdown"):
        await asyncio.wait_for(
            publisher.publish(SUBJECT, b"{}", {MSG_ID: "uid-3:1"}, stop=stop), WAIT
        )
