"""`gati-operator export`: a range of the stream as JSON lines, for tools and for the record.

Each line carries the stream metadata beside the event exactly as published, so the file can be
parsed back into the contract types (`gati_streamtools.records.read_export_line`).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.aio.client import Client

    from gati_runtime.settings import Settings


def register(subparsers: Any) -> None:
    from gati_streamtools.bus import add_bus_arguments

    parser = subparsers.add_parser(
        "export",
        help="write a range of the stream as JSON lines",
        description="One JSON object per line: stream, sequence, subject, time, headers and the "
        "event as published (or error and dataBase64 for a message that is not an event).",
    )
    parser.add_argument("--since", required=True, help="RFC 3339 time, age (10m) or sequence")
    parser.add_argument("--until", default=None, help="inclusive end: time, age or sequence")
    parser.add_argument(
        "--filter",
        action="append",
        default=None,
        metavar="SUBJECT",
        help="subject filter (repeatable); default: every subject of the stream",
    )
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gati_streamtools.bus import EXIT_ERROR, run_tool
    from gati_streamtools.positions import PositionError, parse_position

    try:
        since = parse_position(args.since, option="--since")
        until = parse_position(args.until, option="--until") if args.until else None
    except PositionError as error:
        print(f"gati-operator export: {error}", file=sys.stderr)
        return EXIT_ERROR

    async def body(client: Client, settings: Settings) -> int:
        from gati_contracts.subjects import STREAM_SUBJECTS
        from gati_streamtools.reader import read_range
        from gati_streamtools.records import decode_record, export_line

        out = sys.stdout.buffer
        filters = args.filter or list(STREAM_SUBJECTS)
        async for batch in read_range(
            client.jetstream(), settings.stream, filters, since=since, until=until
        ):
            out.write(b"".join(export_line(decode_record(m)) + b"\n" for m in batch))
        out.flush()
        return 0

    return run_tool("export", args, body)
