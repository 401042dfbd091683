"""The routing tables now, read from the bucket's stream on a real nats-server: each key's last
value, whatever happened to it before, and nothing for a key deleted or purged."""

from __future__ import annotations

from datetime import UTC, datetime

from nats.aio.client import Client

from gati_contracts.events import RoutesEvent, RouteVersion, encode_event
from gati_contracts.subjects import ROUTES_BUCKET
from gati_streamtools.live_routes import live_tables


def _table(path: str, weights: dict[str, int]) -> RoutesEvent:
    return RoutesEvent(
        namespace="shop",
        path=path,
        default_version="v1",
        versions=[
            RouteVersion(version_id=v, weight=w, service=f"orders-{v}", port=8080)
            for v, w in weights.items()
        ],
        observed_at=datetime.now(UTC),
    )


async def test_each_key_reads_as_its_last_value_and_removed_keys_as_none(gati_bus: Client) -> None:
    kv = await gati_bus.jetstream().key_value(ROUTES_BUCKET)
    await kv.put("shop.orders", encode_event(_table("/orders", {"v1": 100})))
    await kv.put("shop.orders", encode_event(_table("/orders", {"v1": 50, "v2": 50})))
    await kv.put("shop.cart", encode_event(_table("/cart", {"v1": 100})))
    await kv.delete("shop.cart")
    await kv.put("shop.gone", encode_event(_table("/gone", {"v1": 100})))
    await kv.purge("shop.gone")
    await kv.put("shop.garbage", b"not a table")

    live = await live_tables(gati_bus.jetstream())

    assert [(t.path, [(v.version_id, v.weight) for v in t.versions]) for t in live.tables] == [
        ("/orders", [("v1", 50), ("v2", 50)])
    ]
    assert list(live.unreadable) == ["shop.garbage"]
    assert "not an event" in live.unreadable["shop.garbage"]


async def test_every_key_written_just_before_is_listed(gati_bus: Client) -> None:
    """nats-py's `kv.keys()` can end its listing before the keys it already received (nats-py
    #842); a read of the stream ends at the last message the server stored."""
    kv = await gati_bus.jetstream().key_value(ROUTES_BUCKET)
    paths = [f"/p{index}" for index in range(100)]
    for index, path in enumerate(paths):
        await kv.put(f"shop.p{index}", encode_event(_table(path, {"v1": 100})))

    for _ in range(3):
        live = await live_tables(gati_bus.jetstream())
        assert sorted(t.path for t in live.tables) == sorted(paths)


async def test_no_bucket_yet_is_no_routes(nats_client: Client) -> None:
    live = await live_tables(nats_client.jetstream())
    assert live.tables == []
    assert live.unreadable == {}
