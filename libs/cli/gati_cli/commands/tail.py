"""`gati-operator tail [FILTER]`: live events as one-liners or JSON lines.

A message that is not a readable event is printed as such, with the reason, and the tail goes
on: a foreign publisher must never stop someone watching the bus.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.aio.client import Client

    from gati_runtime.settings import Settings
    from gati_streamtools.records import Record


def register(subparsers: Any) -> None:
    from gati_streamtools.bus import add_bus_arguments

    parser = subparsers.add_parser(
        "tail",
        help="follow live events",
        description="Print events as they are stored, from now or from --since, until Ctrl-C.",
    )
    parser.add_argument(
        "filter",
        nargs="?",
        default=None,
        metavar="FILTER",
        help="subject filter such as 'gati.cr.>' (default: every subject)",
    )
    parser.add_argument("--since", default=None, help="RFC 3339 time, age (10m) or sequence")
    parser.add_argument("--json", action="store_true", help="JSON lines, as export writes")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gati_streamtools.bus import EXIT_ERROR, run_tool
    from gati_streamtools.positions import PositionError, parse_position

    try:
        since = parse_position(args.since, option="--since") if args.since else None
    except PositionError as error:
        print(f"gati-operator tail: {error}", file=sys.stderr)
        return EXIT_ERROR

    async def body(client: Client, settings: Settings) -> int:
        from gati_contracts.subjects import STREAM_SUBJECTS
        from gati_streamtools.reader import read_range
        from gati_streamtools.records import decode_record, export_line

        filters = [args.filter] if args.filter else list(STREAM_SUBJECTS)
        async for batch in read_range(
            client.jetstream(), settings.stream, filters, since=since, follow=True
        ):
            for message in batch:
                record = decode_record(message)
                line = export_line(record).decode() if args.json else one_liner(record)
                print(line, flush=True)
        return 0

    return run_tool("tail", args, body)


def one_liner(record: Record) -> str:
    from gati_contracts.events import ChangeEvent, OutcomeEvent, RoutesEvent, TrafficSample

    message = record.message
    head = f"{message.time.isoformat(timespec='milliseconds')} #{message.sequence}"
    event = record.event
    if isinstance(event, ChangeEvent):
        what = (
            f"{event.type.value} {event.kind} {event.namespace}/{event.name} "
            f"gen={event.generation} rv={event.resource_version}"
        )
    elif isinstance(event, OutcomeEvent):
        what = (
            f"OUTCOME {event.kind} {event.namespace}/{event.name} {event.service} "
            f"{event.action} {event.result.value} {event.reason} (cause #{event.input_sequence})"
        )
    elif isinstance(event, RoutesEvent):
        weights = " ".join(f"{v.version_id}={v.weight}%" for v in event.versions)
        what = f"ROUTES {event.namespace} {event.path} {weights or '(none)'}"
    elif isinstance(event, TrafficSample):
        what = f"TRAFFIC {event.namespace} {event.handler} {event.version} {event.requests} req"
    else:
        what = f"UNREADABLE {message.subject}: {record.error}"
    return f"{head} {what}"
