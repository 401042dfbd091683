"""`gati-operator verify`: does the stream hold the cluster's current state?

Lists every watched object and compares it with the last event of its subject, by the same rule
the watcher relists with; prints what is missing, stale or deleted-but-not-recorded, and exits 1
on any drift, so scripts and tests can rely on the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gati_runtime.settings import Settings
    from gati_watcher.verify import Report

EXIT_CLEAN = 0
EXIT_DRIFT = 1
EXIT_ERROR = 2
CONNECT_TIMEOUT = 5.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="compare the cluster with the last event per subject; exit 1 on drift",
        description="List the gati.dev objects and managed Deployments and compare each with "
        "the last event of its subject in the stream. Exit 0: no drift, 1: drift, 2: could not "
        "check. Unset flags fall back to the GATI_* variables and KUBECONFIG.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--read-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how long the stream's last events of each watched kind may take to read (default 30)",
    )
    for flag, variable in [
        ("--nats-url", "GATI_NATS_URL"),
        ("--nats-creds", "GATI_NATS_CREDS"),
        ("--nats-tls-ca", "GATI_NATS_TLS_CA"),
        ("--stream", "GATI_STREAM"),
        ("--namespaces", "GATI_NAMESPACES"),
        ("--kube-context", "GATI_KUBE_CONTEXT"),
    ]:
        parser.add_argument(flag, default=None, metavar="VALUE", help=f"overrides {variable}")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gati_runtime.settings import Settings, SettingsError

    try:
        settings = Settings.load(args=args)
    except SettingsError as error:
        print(f"gati-operator verify: {error}", file=sys.stderr)
        return EXIT_ERROR
    from gati_watcher.verify import StreamReadTimeout

    try:
        report = asyncio.run(_verify(settings, args.read_timeout))
    except StreamReadTimeout as error:
        print(
            f"gati-operator verify: could not check: {error}; retry when the stream answers "
            f"faster, or allow more time with --read-timeout (now {error.seconds:g})",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except Exception as error:  # unreachable NATS or cluster, missing stream: say which
        print(f"gati-operator verify: could not check: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(_render_json(report) if args.json else _render_text(report))
    return EXIT_CLEAN if report.clean else EXIT_DRIFT


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


async def _verify(settings: Settings, read_timeout: float | None) -> Report:
    import nats
    from kubernetes import client

    from gati_runtime.kube_config import kube_configuration
    from gati_runtime.nats_connection import tls_context
    from gati_watcher.verify import READ_TIMEOUT, verify

    configuration = kube_configuration(settings.kube_context)
    nc = await nats.connect(
        servers=settings.nats_servers,
        name="gati-operator verify",
        user_credentials=str(settings.nats_creds) if settings.nats_creds else None,
        tls=tls_context(settings),
        connect_timeout=CONNECT_TIMEOUT,
        max_reconnect_attempts=0,
        allow_reconnect=False,
    )
    try:
        await nc.jsm().stream_info(settings.stream)  # a missing stream is an error, not drift
        with client.ApiClient(configuration) as api:
            return await verify(
                api,
                nc.jetstream(),
                settings.stream,
                settings.namespaces,
                read_timeout=read_timeout or READ_TIMEOUT,
            )
    finally:
        await nc.close()


def _render_json(report: Report) -> str:
    return json.dumps(
        {
            "clean": report.clean,
            "objects": report.objects,
            "recorded": report.recorded,
            "drift": [drift.as_dict() for drift in report.drifts],
        },
        indent=2,
    )


def _render_text(report: Report) -> str:
    if report.clean:
        return (
            f"no drift: {report.objects} objects match the last event of their subject "
            f"({report.recorded} subjects recorded)"
        )
    lines = [
        f"drift: {len(report.drifts)} differences ({report.objects} objects listed, "
        f"{report.recorded} subjects recorded)"
    ]
    for drift in report.drifts:
        where = f"{drift.namespace}/{drift.name}" if drift.namespace else drift.name
        lines.append(
            f"  {drift.kind.value:<21} {drift.object_kind:<12} {where}  "
            f"resourceVersion {drift.resource_version}  ({drift.subject})"
        )
    return "\n".join(lines)
