"""`gati-operator history KIND/NAMESPACE/NAME`: one object's timeline from the stream.

Reads only the object's own subjects (its changes, its outcomes, its Deployment), filtered on
the server, so the cost follows the object's history, not the stream's size.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.aio.client import Client

    from gati_contracts.events import OutcomeEvent
    from gati_runtime.settings import Settings
    from gati_streamtools.timeline import Entry


def register(subparsers: Any) -> None:
    from gati_streamtools.bus import add_bus_arguments

    parser = subparsers.add_parser(
        "history",
        help="an object's changes, spec diffs, status transitions and outcomes",
        description="The timeline of one gati.dev object as the stream recorded it: each change "
        "with time, type, generation and resourceVersion, the spec diff, status transitions, "
        "and each service's outcome linked to the change that caused it.",
    )
    parser.add_argument("object", metavar="KIND/NAMESPACE/NAME", help="such as gh/shop/orders")
    parser.add_argument("--since", default=None, help="RFC 3339 time, age (10m) or sequence")
    parser.add_argument("--json", action="store_true", help="print the timeline as JSON")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gati_streamtools.bus import EXIT_ERROR, run_tool
    from gati_streamtools.positions import PositionError, parse_position
    from gati_streamtools.timeline import ObjectRefError, parse_object_ref

    try:
        ref = parse_object_ref(args.object)
        since = parse_position(args.since, option="--since") if args.since else None
    except (ObjectRefError, PositionError) as error:
        print(f"gati-operator history: {error}", file=sys.stderr)
        return EXIT_ERROR

    async def body(client: Client, settings: Settings) -> int:
        from gati_streamtools.reader import read_range
        from gati_streamtools.records import decode_record
        from gati_streamtools.timeline import build_timeline, object_subjects

        records = [
            decode_record(message)
            async for batch in read_range(
                client.jetstream(), settings.stream, object_subjects(ref), since=since
            )
            for message in batch
        ]
        timeline = build_timeline(records)
        if args.json:
            print(json.dumps([_entry_json(entry) for entry in timeline], indent=2))
        elif not timeline:
            print(f"no events for {ref.kind} {ref.namespace}/{ref.name}")
        else:
            print("\n".join(line for entry in timeline for line in _entry_text(entry)))
        return 0

    return run_tool("history", args, body)


def _entry_json(entry: Entry) -> dict[str, Any]:
    from gati_streamtools.records import event_json

    message = entry.record.message
    return {
        "sequence": message.sequence,
        "subject": message.subject,
        "time": message.time.isoformat(),
        "event": event_json(entry.record),
        "error": entry.record.error,
        "specChanges": [str(change) for change in entry.spec_changes],
        "statusChanges": entry.status_changes,
        "outcomes": [
            {"sequence": o.message.sequence, "event": event_json(o)} for o in entry.outcomes
        ],
    }


def _entry_text(entry: Entry) -> list[str]:
    from gati_contracts.events import ChangeEvent, OutcomeEvent

    message = entry.record.message
    event = entry.record.event
    head = f"{message.time.isoformat(timespec='seconds')}  #{message.sequence:<7}"
    if isinstance(event, ChangeEvent):
        lines = [
            f"{head} {event.type.value:<8} {event.kind} {event.namespace}/{event.name}  "
            f"generation {event.generation if event.generation is not None else '-'}  "
            f"resourceVersion {event.resource_version}"
        ]
        lines += [f"    spec {change}" for change in entry.spec_changes]
        lines += [f"    status {change}" for change in entry.status_changes]
        lines += [
            f"    => {_outcome_text(o.event)}"
            for o in entry.outcomes
            if isinstance(o.event, OutcomeEvent)
        ]
        return lines
    if isinstance(event, OutcomeEvent):
        return [f"{head} OUTCOME  {_outcome_text(event)} (cause #{event.input_sequence})"]
    if event is None:
        return [f"{head} UNREADABLE on {message.subject}: {entry.record.error}"]
    return [f"{head} {type(event).__name__} on {message.subject}"]


def _outcome_text(event: OutcomeEvent) -> str:
    text = f"{event.service} {event.action} {event.result.value}: {event.reason}"
    return f"{text} — {event.message}" if event.message else text
