"""A stream tool that cannot reach NATS names the address, never the password in the URL.

deploy/ hands every NATS client `nats://user:password@host`, and the tools print the reason a
connection failed to a terminal or a CI log.
"""

from __future__ import annotations

import pytest

from gati_runtime.embedded_nats import LOOPBACK, free_port
from gati_runtime.settings import Settings
from gati_streamtools.bus import BusUnreachableError, connect_tool

PASSWORD = "pw-tooling-never-printed"


async def test_an_unreachable_bus_is_reported_without_the_password() -> None:
    url = f"nats://tooling:{PASSWORD}@{LOOPBACK}:{free_port()}"
    settings = Settings.load(environ={"GATI_NATS_URL": url})
    with pytest.raises(BusUnreachableError) as refused:
        await connect_tool(settings, name="security-test")
    assert f"{LOOPBACK}" in str(refused.value)
    assert PASSWORD not in str(refused.value)
