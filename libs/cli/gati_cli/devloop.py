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
from gati_cli.applier import Applier, documents, waves
from gati_cli.devstack import DevStack, built_services
from gati_contracts.kinds import GATI_HANDLER, GATI_MODULE, GATI_VERSION, GROUP, VERSION
from gati_contracts.subjects import STREAM
from gati_streamtools.live_routes import live_tables

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
        first, *later = waves(documents([options.examples]))
        for line in await asyncio.to_thread(applier.apply_all, first):
            _say(f"applied {line}")
        rollouts = _Rollouts(applier, first, later)

        bus = await nats.connect(stack.nats.url, name="gati-operator-dev")
        try:
            await _loop(
                options, stack, services, client.CustomObjectsApi(api_client), bus, stop, rollouts
            )
        finally:
            with contextlib.suppress(Exception):
                await bus.drain()
            api_client.close()
    _say("stopped")
    return 0


class _Rollouts:
    """Applies each later wave of samples once the handlers of the one before are `Active`, so
    the newer version of a path rolls out against a serving one, step by step."""

    def __init__(
        self, applier: Applier, applied: list[dict[str, Any]], later: list[list[dict[str, Any]]]
    ) -> None:
        self._applier = applier
        self._awaited = _handler_names(applied)
        self._later = later
        for wave in later:
            for name in _handler_names(wave):
                _say(f"holding {name} back until {', '.join(self._awaited)} is Active")

    async def advance(self, handlers: list[dict[str, Any]], versions: list[dict[str, Any]]) -> None:
        """A wave already in the cluster (a reused state directory) is applied again at once."""
        if not self._later:
            return
        phases = {_name(v): (v.get("status") or {}).get("phase") for v in versions}
        present = {_name(h) for h in handlers}
        waiting = any(phases.get(name) != "Active" for name in self._awaited)
        if waiting and not present.intersection(_handler_names(self._later[0])):
            return
        wave = self._later.pop(0)
        for line in await asyncio.to_thread(self._applier.apply_all, wave):
            _say(f"applied {line}")
        self._awaited = _handler_names(wave)


def _name(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return f"{metadata.get('namespace')}/{metadata.get('name')}"


def _handler_names(docs: list[dict[str, Any]]) -> list[str]:
    """The handlers of `docs`; each has a GatiVersion of the same name (timescape's)."""
    return [_name(d) for d in docs if d.get("kind") == "GatiHandler"]


async def _loop(
    options: DevOptions,
    stack: DevStack,
    services: list[str],
    api: client.CustomObjectsApi,
    bus: Client,
    stop: asyncio.Event,
    rollouts: _Rollouts,
) -> None:
    js = bus.jetstream()
    last_count, last_time = 0, time.monotonic()
    next_window = time.monotonic()
    while True:  # one view at least, even when --duration ran out during the start
        handlers, modules, versions = await asyncio.gather(
            asyncio.to_thread(_list, api, GATI_HANDLER.plural),
            asyncio.to_thread(_list, api, GATI_MODULE.plural),
            asyncio.to_thread(_list, api, GATI_VERSION.plural),
        )
        await rollouts.advance(handlers, versions)
        routed = traffic.routed_weights((await live_tables(js)).tables)
        now = time.monotonic()
        if options.requests_per_second > 0 and now >= next_window:
            next_window = now + WINDOW_SECONDS
            weights = traffic.current_weights(handlers, versions, routed)
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
            routed=routed,
        )
        sys.stdout.write((liveview.CLEAR if options.redraw else "") + view)
        sys.stdout.flush()
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), REDRAW_SECONDS)
