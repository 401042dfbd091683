"""`gati-operator routes`: the routing table now (KV `gati-routes`) or at a past instant.

The past table is rebuilt from the `gati.routes.>` events, the last per path stored at or
before the instant; the KV bucket keeps only a short history, the stream keeps all of it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.aio.client import Client

    from gati_contracts.events import RoutesEvent
    from gati_runtime.settings import Settings


def register(subparsers: Any) -> None:
    from gati_streamtools.bus import add_bus_arguments

    parser = subparsers.add_parser(
        "routes",
        help="the routing table now, or as it was at --at",
        description="Print each path's versions and weights: now from the KV bucket "
        "gati-routes, or with --at as the last gati.routes event per path at or before it.",
    )
    parser.add_argument("--namespace", default=None, help="only this namespace")
    parser.add_argument("--at", default=None, help="RFC 3339 time or age (10m)")
    parser.add_argument("--json", action="store_true", help="print DESIGN §2's JSON shape")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gati_streamtools.bus import EXIT_ERROR, run_tool
    from gati_streamtools.positions import PositionError, parse_position

    try:
        at = parse_position(args.at, option="--at") if args.at else None
        if at is not None and at.time is None:
            raise PositionError("--at takes a time or an age, not a stream sequence")
    except PositionError as error:
        print(f"gati-operator routes: {error}", file=sys.stderr)
        return EXIT_ERROR

    async def body(client: Client, settings: Settings) -> int:
        from gati_streamtools.routes_at import routes_json

        if at is None:
            tables = await _live_tables(client)
        else:
            tables = await _tables_at(client, settings, at.time, args.namespace)
        rows = routes_json(tables, args.namespace)
        if args.json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            print("no routes")
        else:
            for row in rows:
                print(f"{row['namespace']} {row['path']}  default {row['defaultVersion'] or '-'}")
                for version in row["versions"]:
                    print(
                        f"    {version['versionId']:<16} {version['weight']:>3}%  "
                        f"{version['service']}:{version['port']}"
                    )
        return 0

    return run_tool("routes", args, body)


async def _tables_at(
    client: Client, settings: Settings, at: Any, namespace: str | None
) -> list[RoutesEvent]:
    from gati_contracts.subjects import ROUTES_ROOT
    from gati_contracts.tokens import encode_token
    from gati_streamtools.positions import Position
    from gati_streamtools.reader import read_range
    from gati_streamtools.records import decode_record
    from gati_streamtools.routes_at import tables_at

    subject = f"{ROUTES_ROOT}.{encode_token(namespace)}.*" if namespace else f"{ROUTES_ROOT}.>"
    records = [
        decode_record(message)
        async for batch in read_range(
            client.jetstream(), settings.stream, [subject], until=Position(time=at)
        )
        for message in batch
    ]
    return list(tables_at(records, at).values())


async def _live_tables(client: Client) -> list[RoutesEvent]:
    from gati_streamtools.live_routes import live_tables

    live = await live_tables(client.jetstream())
    for key, reason in live.unreadable.items():
        print(f"gati-operator routes: key {key}: {reason}", file=sys.stderr)
    return live.tables
