"""How a stream tool reaches NATS: the `GATI_*` settings, overridable by a few flags.

A tool is a short-lived process a person waits on, so it fails fast with the reason instead of
retrying forever as a service does; it only reads, so it runs happily as the read-only
`tooling` user (`--nats-creds`).

Every stream command registers its flags from here while the CLI builds its parser, so nats-py
and the settings model are imported where a tool connects, not with the module: a command that
never touches the bus (or `--help`) does not pay their half second of start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from nats.aio.client import Client

    from gati_runtime.settings import Settings

CONNECT_TIMEOUT = 5.0
_FLAGS = (
    ("--nats-url", "GATI_NATS_URL"),
    ("--nats-creds", "GATI_NATS_CREDS"),
    ("--nats-tls-ca", "GATI_NATS_TLS_CA"),
    ("--stream", "GATI_STREAM"),
)


def add_bus_arguments(parser: Any) -> None:
    for flag, variable in _FLAGS:
        parser.add_argument(flag, default=None, metavar="VALUE", help=f"overrides {variable}")


def bus_settings(args: argparse.Namespace) -> Settings:
    """Raises `SettingsError` naming the variable or flag to fix."""
    from gati_runtime.settings import Settings

    return Settings.load(args=args)


class BusUnreachableError(ConnectionError):
    pass


async def connect_tool(settings: Settings, *, name: str) -> Client:
    """One bounded attempt: nats-py otherwise retries an unreachable first server for ever,
    printing a traceback per attempt through its default error callback."""
    import nats

    from gati_runtime.nats_connection import tls_context, without_credentials

    errors: list[str] = []
    failed = asyncio.Event()

    async def remember(error: Exception) -> None:
        errors.append(str(error) or type(error).__name__)
        failed.set()

    connecting = asyncio.ensure_future(
        nats.connect(
            servers=settings.nats_servers,
            name=name,
            user_credentials=str(settings.nats_creds) if settings.nats_creds else None,
            tls=tls_context(settings),
            connect_timeout=CONNECT_TIMEOUT,
            max_reconnect_attempts=0,
            allow_reconnect=False,
            error_cb=remember,
        )
    )
    failing = asyncio.ensure_future(failed.wait())
    await asyncio.wait(
        {connecting, failing}, timeout=CONNECT_TIMEOUT, return_when="FIRST_COMPLETED"
    )
    failing.cancel()
    if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
        return connecting.result()
    connecting.cancel()
    reason = errors[-1] if errors else "no answer"
    # A terminal or CI log is no place for the password that deploy/ puts into the URL.
    address = ",".join(without_credentials(urlparse(url)) for url in settings.nats_servers)
    raise BusUnreachableError(
        f"cannot reach NATS at {address} ({reason}); check --nats-url or GATI_NATS_URL"
    )


EXIT_ERROR = 2


def run_tool(
    command: str,
    args: argparse.Namespace,
    body: Callable[[Client, Settings], Awaitable[int]],
) -> int:
    """Load settings, connect, run `body`; any failure becomes one line naming the command and
    exit code 2, and Ctrl-C a clean exit, so a tool never ends in a traceback."""
    from gati_runtime.settings import SettingsError

    try:
        settings = bus_settings(args)
    except SettingsError as error:
        print(f"gati-operator {command}: {error}", file=sys.stderr)
        return EXIT_ERROR

    async def main() -> int:
        client = await connect_tool(settings, name=f"gati-operator {command}")
        try:
            return await body(client, settings)
        finally:
            await client.close()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0
    except BusUnreachableError as error:
        print(f"gati-operator {command}: {error}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:  # unreachable NATS, missing stream, denied permission: say which
        print(f"gati-operator {command}: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_ERROR
