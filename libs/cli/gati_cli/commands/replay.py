"""`gati-operator replay --dry-run`: what a service would do with a recorded range.

Only the service's pure decision logic runs: nothing is applied to a cluster or published, so a
past incident can be replayed against today's code to see whether it would still happen.
`--republish PREFIX` instead copies the range, headers included, under another prefix.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.client import Client

    from gati_runtime.settings import Settings
    from gati_streamtools.positions import Position
    from gati_streamtools.records import Record
    from gati_streamtools.replay import Adapter, Decision

SERVICES = ("reconciler", "scaler", "timescape")
"""Each has an adapter (`adapters`); --service accepts no other."""


def register(subparsers: Any) -> None:
    from gati_streamtools.bus import add_bus_arguments

    parser = subparsers.add_parser(
        "replay",
        help="feed a recorded range to a service's decision logic (--dry-run) or copy it",
        description="With --dry-run, print what --service would decide for each recorded event "
        "(manifest diffs for the reconciler; replica decisions and HPAs for the scaler, which "
        "decides with the GATI_SCALER_* tuning it ran with; rollout steps, rollbacks, "
        "decommissions and routing tables for timescape; both read the traffic samples of "
        "GATI_METRICS too); nothing touches the cluster. With --republish PREFIX, copy the range "
        "to PREFIX.<subject> for other tools.",
    )
    parser.add_argument("--since", required=True, help="RFC 3339 time, age (10m) or sequence")
    parser.add_argument("--until", default=None, help="inclusive end: time, age or sequence")
    parser.add_argument("--filter", action="append", default=None, metavar="SUBJECT")
    parser.add_argument(
        "--service", choices=SERVICES, default=None, help="whose decisions to replay"
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="print decisions, change nothing")
    mode.add_argument("--republish", default=None, metavar="PREFIX")
    parser.add_argument("--json", action="store_true", help="one JSON decision per line")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gati_streamtools.bus import EXIT_ERROR, run_tool
    from gati_streamtools.positions import PositionError, parse_position
    from gati_streamtools.replay import RepublishPrefixError, check_republish_prefix

    def fail(message: str) -> int:
        print(f"gati-operator replay: {message}", file=sys.stderr)
        return EXIT_ERROR

    try:
        since = parse_position(args.since, option="--since")
        until = parse_position(args.until, option="--until") if args.until else None
        if args.republish is not None:
            check_republish_prefix(args.republish)
    except (PositionError, RepublishPrefixError) as error:
        return fail(str(error))
    if args.dry_run and args.service is None:
        return fail("--dry-run needs --service " + "|".join(SERVICES))

    async def body(client: Client, settings: Settings) -> int:
        if args.republish is not None:
            return await _republish(client, settings, args, since, until)
        return await _dry_run(client, settings, args, since, until)

    return run_tool("replay", args, body)


def adapters() -> dict[str, Callable[[], Adapter]]:
    """The replayable services, each imported only when asked for."""
    import os

    from gati_scaler.options import ScalerOptions
    from gati_streamtools.replay import ReconcilerReplay
    from gati_streamtools.replay_scaler import ScalerReplay
    from gati_streamtools.replay_timescape import TimescapeReplay

    def scaler() -> ScalerReplay:
        # The service's own tuning (GATI_SCALER_*): another window would decide otherwise.
        return ScalerReplay(ScalerOptions.from_env(os.environ))

    return {"reconciler": ReconcilerReplay, "scaler": scaler, "timescape": TimescapeReplay}


async def _dry_run(
    client: Client,
    settings: Settings,
    args: argparse.Namespace,
    since: Position,
    until: Position | None,
) -> int:
    import heapq

    from gati_streamtools.reader import read_range
    from gati_streamtools.records import decode_record

    adapter = adapters()[args.service]()
    filters = args.filter or list(adapter.filters)
    batches = read_range(client.jetstream(), settings.stream, filters, since=since, until=until)
    if not adapter.traffic_filters:
        async for batch in batches:
            for message in batch:
                _show(adapter.decide(decode_record(message)), as_json=args.json)
    else:
        records = [decode_record(message) async for batch in batches for message in batch]
        traffic = await _traffic(client, settings, adapter.traffic_filters, records)
        for record in heapq.merge(records, traffic, key=lambda r: r.message.time):
            _show(adapter.decide(record), as_json=args.json)
    _show(adapter.finish(), as_json=args.json)
    return 0


async def _traffic(
    client: Client, settings: Settings, filters: tuple[str, ...], records: list[Record]
) -> list[Record]:
    """The samples stored while the range was recorded (and a little before, for the first
    health windows), or none with a note when the metrics stream is gone: its retention is
    short, so an old range is replayed on its change events alone."""
    from nats.js.errors import NotFoundError

    from gati_streamtools.positions import Position
    from gati_streamtools.reader import read_range
    from gati_streamtools.records import decode_record
    from gati_streamtools.replay_timescape import SAMPLE_LOOKBACK

    if not records:
        return []
    first, last = records[0].message.time, records[-1].message.time
    try:
        return [
            decode_record(message)
            async for batch in read_range(
                client.jetstream(),
                settings.metrics_stream,
                filters,
                since=Position(time=first - SAMPLE_LOOKBACK),
                until=Position(time=last),
            )
            for message in batch
        ]
    except NotFoundError:
        print(
            f"gati-operator replay: stream {settings.metrics_stream} not found; replaying "
            "without traffic samples",
            file=sys.stderr,
        )
        return []


def _show(decisions: list[Decision], *, as_json: bool) -> None:
    for decision in decisions:
        if as_json:
            print(json.dumps(decision.as_json()))
            continue
        when = f" {decision.at.isoformat(timespec='milliseconds')}" if decision.at else ""
        print(f"#{decision.sequence}{when} {decision.target}: {decision.action}")
        for change in decision.changes:
            print(f"    {change}")


async def _republish(
    client: Client,
    settings: Settings,
    args: argparse.Namespace,
    since: Position,
    until: Position | None,
) -> int:
    from gati_contracts.subjects import STREAM_SUBJECTS
    from gati_streamtools.reader import read_range
    from gati_streamtools.replay import BUS_NAMESPACE, check_republish_prefix

    info = await client.jsm().stream_info(settings.stream)
    check_republish_prefix(args.republish, (BUS_NAMESPACE, *(info.config.subjects or [])))
    copied = 0
    async for batch in read_range(
        client.jetstream(),
        settings.stream,
        args.filter or list(STREAM_SUBJECTS),
        since=since,
        until=until,
    ):
        for message in batch:
            await client.publish(
                f"{args.republish}.{message.subject}",
                message.data,
                headers=message.headers or None,
            )
            copied += 1
    await client.flush()
    print(f"copied {copied} messages to {args.republish}.>", file=sys.stderr)
    return 0
