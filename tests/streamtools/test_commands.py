"""The commands as a user runs them: subprocesses against a real nats-server holding a recorded
history, published exactly as the contracts define it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime

from nats.aio.client import Client

from gati_contracts.events import ChangeEvent, encode_event
from gati_contracts.handler import GatiHandler
from gati_contracts.objects import parse_object
from gati_contracts.subjects import ROUTES_BUCKET
from gati_reconciler.manifests import render
from gati_streamtools.records import read_export_line
from streamtools.recorded import change, handler_object, outcome, publish, routes


def gati(nats_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gati_cli", *args, "--nats-url", nats_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def record_rollout(client: Client) -> dict[str, int]:
    """A handler created, reconciled, its image changed, reconciled again; plus a stray."""
    seq: dict[str, int] = {}
    seq["created"] = await publish(client, change(handler_object(1)))
    seq["outcome1"] = await publish(client, outcome(seq["created"]))
    seq["updated"] = await publish(
        client, change(handler_object(2, image="ghcr.io/x/orders:2.0.0"))
    )
    seq["outcome2"] = await publish(client, outcome(seq["updated"], reason="Rolled"))
    ack = await client.jetstream().publish("gati.cr.gatihandler.shop.orders", b"not an event")
    seq["garbage"] = ack.seq
    return seq


async def test_export_parses_back_into_the_published_events(
    gati_bus: Client, nats_url: str
) -> None:
    seq = await record_rollout(gati_bus)
    result = gati(nats_url, "export", "--since", "1", "--until", str(seq["outcome2"]))
    assert result.returncode == 0, result.stderr
    lines = [read_export_line(line) for line in result.stdout.splitlines()]
    assert [meta.sequence for meta, _ in lines] == sorted(seq.values())[:4]
    first_meta, first_event = lines[0]
    assert first_event == change(handler_object(1))
    assert first_meta.headers["Gati-Schema"] == "gati.change"
    assert first_meta.time.tzinfo is not None
    everything = gati(nats_url, "export", "--since", "1", "--filter", "gati.cr.>")
    meta, event = read_export_line(everything.stdout.splitlines()[-1])
    assert (meta.sequence, event, meta.error is not None) == (seq["garbage"], None, True)


async def test_history_shows_the_spec_diff_and_the_outcome_it_caused(
    gati_bus: Client, nats_url: str
) -> None:
    seq = await record_rollout(gati_bus)
    result = gati(nats_url, "history", "gh/shop/orders", "--json")
    assert result.returncode == 0, result.stderr
    timeline = {entry["sequence"]: entry for entry in json.loads(result.stdout)}
    assert set(timeline) == {seq["created"], seq["updated"], seq["garbage"]}
    updated = timeline[seq["updated"]]
    assert updated["specChanges"] == [
        '~ spec.image: "ghcr.io/x/orders:1.0.0" -> "ghcr.io/x/orders:2.0.0"'
    ]
    assert [o["event"]["reason"] for o in updated["outcomes"]] == ["Rolled"]
    assert timeline[seq["garbage"]]["error"]
    text = gati(nats_url, "history", "GatiHandler/shop/orders")
    assert "~ spec.image" in text.stdout
    assert "=> reconciler reconciled Succeeded: Rolled" in text.stdout
    assert "UNREADABLE" in text.stdout
    since = gati(nats_url, "history", "gh/shop/orders", "--since", str(seq["updated"]), "--json")
    assert json.loads(since.stdout)[0]["sequence"] == seq["updated"]


async def test_routes_at_returns_the_table_between_two_rollout_steps(
    gati_bus: Client, nats_url: str
) -> None:
    await publish(gati_bus, routes({"v1": 100}))
    await asyncio.sleep(0.01)  # stream timestamps are the only clock --at reads
    between = datetime.now(UTC)
    await asyncio.sleep(0.01)
    latest = routes({"v1": 50, "v2": 50})
    await publish(gati_bus, latest)
    result = gati(nats_url, "routes", "--at", between.isoformat(), "--json")
    assert result.returncode == 0, result.stderr
    [table] = json.loads(result.stdout)
    assert [(v["versionId"], v["weight"]) for v in table["versions"]] == [("v1", 100)]
    kv = await gati_bus.jetstream().key_value(ROUTES_BUCKET)
    await kv.put("shop.orders", encode_event(latest))
    now = json.loads(gati(nats_url, "routes", "--json", "--namespace", "shop").stdout)
    assert [(v["versionId"], v["weight"]) for v in now[0]["versions"]] == [("v1", 50), ("v2", 50)]
    assert "v2" in gati(nats_url, "routes").stdout


async def test_replay_dry_run_reproduces_the_rendered_manifests(
    gati_bus: Client, nats_url: str
) -> None:
    seq = await record_rollout(gati_bus)
    result = gati(
        nats_url, "replay", "--since", "1", "--service", "reconciler", "--dry-run", "--json"
    )
    assert result.returncode == 0, result.stderr
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["sequence"] for d in decisions] == [seq["created"], seq["updated"]]
    updated = handler_object(2, image="ghcr.io/x/orders:2.0.0")
    resource = parse_object(updated)
    assert isinstance(resource, GatiHandler)
    assert decisions[1]["manifests"] == render(resource)
    assert any("image" in line for line in decisions[1]["changes"])
    text = gati(nats_url, "replay", "--since", "1", "--service", "reconciler", "--dry-run")
    assert f"#{seq['updated']} GatiHandler shop/orders: apply" in text.stdout


async def test_replay_refuses_what_it_cannot_do_with_a_clear_error(
    gati_bus: Client, nats_url: str
) -> None:
    looping = gati(nats_url, "replay", "--since", "1", "--republish", "gati.cr")
    assert looping.returncode == 2
    assert "captures" in looping.stderr
    unnamed = gati(nats_url, "replay", "--since", "1", "--dry-run")
    assert unnamed.returncode == 2
    assert "--dry-run needs --service reconciler|scaler|timescape" in unnamed.stderr
    unreachable = gati("nats://127.0.0.1:1", "history", "gh/shop/orders")
    assert unreachable.returncode == 2
    assert "cannot reach NATS at nats://127.0.0.1:1" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    bad_time = gati(nats_url, "export", "--since", "yesterday")
    assert bad_time.returncode == 2
    assert "--since" in bad_time.stderr


async def test_republish_copies_the_range_under_the_prefix(gati_bus: Client, nats_url: str) -> None:
    seq = await record_rollout(gati_bus)
    await gati_bus.jetstream().add_stream(name="LAB", subjects=["replay.lab.>"])
    result = gati(
        nats_url,
        "replay",
        "--since",
        "1",
        "--until",
        str(seq["outcome1"]),
        "--republish",
        "replay.lab",
    )
    assert result.returncode == 0, result.stderr
    info = await gati_bus.jsm().stream_info("LAB")
    assert info.state.messages == 2
    first = await gati_bus.jsm().get_msg("LAB", 1)
    assert first.subject == "replay.lab.gati.cr.gatihandler.shop.orders"
    assert first.data == encode_event(change(handler_object(1)))


async def test_tail_prints_live_events_and_survives_bad_messages(
    gati_bus: Client, nats_url: str
) -> None:
    await gati_bus.jetstream().publish("gati.cr.gatihandler.shop.orders", b"{")
    await publish(gati_bus, change(handler_object(1)))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gati_cli",
        "tail",
        "gati.cr.>",
        "--since",
        "1",
        "--nats-url",
        nats_url,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            bad, recorded = [(await process.stdout.readline()).decode() for _ in range(2)]
            assert "#1 UNREADABLE gati.cr.gatihandler.shop.orders" in bad
            assert "#2 MODIFIED GatiHandler shop/orders gen=1 rv=1" in recorded
            await publish(gati_bus, change(handler_object(2)))
            live = (await process.stdout.readline()).decode()
        assert "#3 MODIFIED GatiHandler shop/orders" in live
        assert process.returncode is None
    finally:
        process.terminate()
        await process.wait()


def test_fixture_events_are_contract_events() -> None:
    assert isinstance(change(handler_object(1)), ChangeEvent)
