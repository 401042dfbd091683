"""The running part of `gati-operator dev`: start the stack, apply, play traffic, redraw.

Kubernetes calls use the official synchronous client in a worker thread, exactly as a user's
tool would; NATS is read and written with nats-py on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from kubernetes import client, config
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from gati_cli import liveview, traffic
from gati_cli.applier import Applier, documents
from gati_cli.devstack import DevStack, built_services
from gati_contracts.kinds import GATI_HANDLER, GATI_MODULE, GATI_VERSION, GROUP, VERSION
from gati_contracts.subjects import STREAM

WINDOW_SECONDS = 5.0
REDRAW_SECONDS = 1.0


@dataclass(frozen=True)
class DevOptions:
    state_dir: Path
    fresh: bool
    replicas: int
    examples: Path
    crds: Path
    requests_per_second: float
    duration: float
    redraw: bool


def _say(text: str) -> None:
    print(text, flush=True)


def _list(api: client.CustomObjectsApi, plural: str) -> list[dict[str, Any]]:
    try:
        listing = api.list_cluster_custom_object(GROUP, VERSION, plural)
    except client.ApiException:
        return []
    items: list[dict[str, Any]] = listing["items"] if isinstance(listing, dict) else []
    return items


async def run_dev(options: DevOptions) -> int:
    stack = DevStack(options.state_dir, replicas=options.replicas)
    if options.fresh:
        stack.reset()
    services, missing = built_services()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if options.duration > 0:
        loop.call_later(options.duration, stop.set)

    with stack.running(services):
        assert stack.nats is not None
        assert stack.kubesim is not None
        _say(f"NATS:       {stack.nats.url}")
        _say(f"kubesim:    {stack.kubesim.url}")
        _say(f"kubeconfig: {stack.kubeconfig}   (export KUBECONFIG={stack.kubeconfig})")
        _say(f"logs:       {stack.logs_dir}")
        for name, reason in missing.items():
            _say(f"not running {name}: {reason}")

        api_client = config.new_client_from_config(config_file=str(stack.kubeconfig))
        applier = Applier(api_client)
        for line in await asyncio.to_thread(applier.apply_all, documents([options.crds])):
            _say(f"installed {line}")
        for line in await asyncio.to_thread(applier.apply_all, documents([options.examples])):
            _say(f"applied {line}")

        bus = await nats.connect(stack.nats.url, name="gati-operator-dev")
        try:
            await _loop(options, stack, services, client.CustomObjectsApi(api_client), bus, stop)
        finally:
            with contextlib.suppress(Exception):
                await bus.drain()
            api_client.close()
    _say("stopped")
    return 0


async def _loop(
    options: DevOptions,
    stack: DevStack,
    services: list[str],
    api: client.CustomObjectsApi,
    bus: Client,
    stop: asyncio.Event,
) -> None:
    js = bus.jetstream()
    last_count, last_time = 0, time.monotonic()
    next_window = time.monotonic()
    while not stop.is_set():
        handlers, modules, versions = await asyncio.gather(
            asyncio.to_thread(_list, api, GATI_HANDLER.plural),
            asyncio.to_thread(_list, api, GATI_MODULE.plural),
            asyncio.to_thread(_list, api, GATI_VERSION.plural),
        )
        now = time.monotonic()
        if options.requests_per_second > 0 and now >= next_window:
            next_window = now + WINDOW_SECONDS
            weights = traffic.current_weights(handlers, versions)
            for sample in traffic.samples(
                weights,
                requests_per_second=options.requests_per_second,
                window_seconds=WINDOW_SECONDS,
            ):
                subject, payload, headers = traffic.publication(sample)
                await bus.publish(subject, payload, headers=headers)
        try:
            count = (await js.stream_info(STREAM)).state.messages
        except NotFoundError:
            count = 0  # no service has provisioned the stream yet
        rate = (count - last_count) / max(now - last_time, 1e-6)
        last_count, last_time = count, now
        for label in stack.restart_exited():
            _say(f"restarted {label} (it exited; see {stack.logs_dir})")
        view = liveview.render(
            handlers,
            modules,
            versions,
            events_per_second=rate,
            stream_messages=count,
            services=[f"{name} x{options.replicas}" for name in services],
        )
        sys.stdout.write((liveview.CLEAR if options.redraw else "") + view)
        sys.stdout.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), REDRAW_SECONDS)
