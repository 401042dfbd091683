"""Streams, KV buckets and durable consumers made to match what the code expects, every start.

Every replica of every service runs this at start-up, so it must be idempotent and must repair
drift (someone ran `nats stream edit`, or a new release changed a limit). nats-py does neither
for us: an existing durable silently keeps its old config when created again (nats-py #603), so
each object is read, compared field by field with the desired config, and updated only where
it differs. Fields JetStream cannot change in place are reported, never "fixed" by deleting a
stream or consumer, which would lose events or a consumer's position.

Replicas start together, so on a JetStream cluster they race to create the same objects, and
a create that loses the race may go unanswered; such "not now" failures are retried (each attempt
reads first, so one that did land is simply found unchanged) rather than ending the service.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import structlog
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, NotFoundError
from nats.js.manager import JetStreamManager

from gati_contracts.subjects import (
    LEASES_BUCKET,
    METRICS_STREAM_SUBJECTS,
    ROUTES_BUCKET,
    STREAM_SUBJECTS,
)
from gati_runtime.nats_connection import TRANSIENT_ERRORS
from gati_runtime.outcomes import Backoff
from gati_runtime.settings import Settings, StreamLimits

log = structlog.get_logger(__name__)

# What nats-py names the stream behind a KV bucket; `js.key_value(bucket)` looks for exactly it.
KV_STREAM_PREFIX = "KV_"
# KV history beyond 64 is refused by the server.
MAX_KV_HISTORY = 64

Action = Literal["created", "updated", "unchanged"]
Drift = dict[str, tuple[object, object]]

_STREAM_FIELDS = (
    "subjects",
    "retention",
    "storage",
    "discard",
    "max_age",
    "max_bytes",
    "max_msgs_per_subject",
    "num_replicas",
    "duplicate_window",
    "allow_rollup_hdrs",
    "deny_delete",
    "allow_direct",
)
_STREAM_IMMUTABLE = frozenset({"storage", "retention"})
_CONSUMER_FIELDS = (
    "filters",
    "deliver_policy",
    "ack_policy",
    "ack_wait",
    "max_deliver",
    "max_ack_pending",
    "description",
)
_CONSUMER_IMMUTABLE = frozenset({"deliver_policy", "ack_policy"})


class ProvisioningError(RuntimeError):
    """The server holds a config we may not change in place; the message says what to do."""


@dataclass(frozen=True)
class Change:
    kind: Literal["stream", "consumer"]
    name: str
    action: Action
    fields: Mapping[str, tuple[object, object]] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.fields:
            return f"{self.kind} {self.name}: {self.action}"
        detail = ", ".join(f"{key} {was!r} -> {now!r}" for key, (was, now) in self.fields.items())
        return f"{self.kind} {self.name}: {self.action} ({detail})"


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer, shared by all replicas of one service."""

    durable: str
    filter_subjects: tuple[str, ...]
    # What a crashed replica costs: its fetched messages return to the others after ack_wait.
    # Long work is safe with a short one, since the consumer loop sends `in_progress` every
    # third of it.
    ack_wait: timedelta = timedelta(seconds=10)
    max_deliver: int = 8
    max_ack_pending: int = 1000
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL
    description: str | None = None
    filter_on_server: bool = True
    """False: the durable reads the whole stream and the consumer loop settles the subjects
    outside `filter_subjects` unread. nats-server (2.15) finds the next message of a durable
    with several filters by walking the subject tree of the message block it reads from, on
    every delivery once the durable trails the stream by more messages than that block has
    subjects: ~100 us of server CPU a delivery more than a sequential read (measured on a stream
    of one subject per object). Worth it when nearly every message is the service's anyway."""
    succeeds: str | None = None
    """The durable this one replaces while replicas of the older release still pull from it
    (a rolling upgrade that changes what a durable delivers needs a durable of its own). Created
    where that one's acks stand, not at `deliver_policy`: the messages after its ack floor come
    again, none is skipped (at-least-once) and the stream is not replayed from its start; that
    one is left to expire once nothing has pulled from it for `SUCCEEDED_INACTIVE`."""

    def __post_init__(self) -> None:
        if not self.filter_subjects:
            raise ValueError(f"consumer {self.durable}: filter_subjects must not be empty")
        if self.max_deliver < 1:
            raise ValueError(f"consumer {self.durable}: max_deliver must be at least 1")

    def config(self) -> ConsumerConfig:
        filters = self.filter_subjects if self.filter_on_server else ()
        single = len(filters) == 1
        return ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            description=self.description,
            deliver_policy=self.deliver_policy,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait.total_seconds(),
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            filter_subject=filters[0] if single else None,
            filter_subjects=list(filters) if len(filters) > 1 else None,
        )


def stream_config(limits: StreamLimits, subjects: Sequence[str]) -> StreamConfig:
    """An event log: file storage, limits retention so every service reads it independently.

    Direct get lets any replica of the stream answer "last event of this subject" (the
    watcher's relist, the reconciler's sequence guard, the scaler's takeover) without a round
    trip through the stream leader.
    """
    return StreamConfig(
        name=limits.name,
        subjects=list(subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=limits.max_age.total_seconds(),
        max_bytes=limits.max_bytes,
        num_replicas=limits.replicas,
        duplicate_window=limits.duplicate_window.total_seconds(),
        allow_direct=True,
    )


def kv_stream_config(
    bucket: str, *, history: int, replicas: int, per_key_ttl: bool = False
) -> StreamConfig:
    """The stream behind a KV bucket, shaped as nats-py's `create_key_value` shapes it.

    `per_key_ttl` lets each write carry its own `Nats-TTL` (server 2.11+), so a lease left by a
    crashed replica disappears by itself while other keys keep theirs.
    """
    if not 1 <= history <= MAX_KV_HISTORY:
        raise ValueError(f"KV bucket {bucket}: history must be 1..{MAX_KV_HISTORY}, got {history}")
    return StreamConfig(
        name=KV_STREAM_PREFIX + bucket,
        subjects=[f"$KV.{bucket}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        max_age=0,
        max_bytes=-1,
        max_msgs_per_subject=history,
        num_replicas=replicas,
        duplicate_window=timedelta(minutes=2).total_seconds(),
        allow_rollup_hdrs=True,
        deny_delete=True,
        allow_direct=True,
        allow_msg_ttl=True if per_key_ttl else None,
    )


def bus_streams(settings: Settings) -> list[StreamConfig]:
    """Everything the services share: the event log, the metrics stream, the routing table."""
    return [
        stream_config(settings.stream_limits, STREAM_SUBJECTS),
        stream_config(settings.metrics_limits, METRICS_STREAM_SUBJECTS),
        kv_stream_config(
            ROUTES_BUCKET, history=settings.routes_history, replicas=settings.stream_replicas
        ),
        kv_stream_config(
            LEASES_BUCKET, history=1, replicas=settings.stream_replicas, per_key_ttl=True
        ),
    ]


def _normal(value: object) -> object:
    """Server round trips turn seconds into nanoseconds and back, and may reorder subjects."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, list | tuple):
        return tuple(sorted(str(item) for item in value))
    return value


def _drift(existing: Mapping[str, object], desired: Mapping[str, object]) -> Drift:
    return {
        name: (existing.get(name), want)
        for name, want in desired.items()
        if want is not None and _normal(existing.get(name)) != _normal(want)
    }


def _stream_view(config: StreamConfig) -> dict[str, object]:
    view = {name: getattr(config, name) for name in _STREAM_FIELDS}
    # The server stores "no limit" as 0 for max_age and -1 for the counters.
    view["max_age"] = view["max_age"] or 0.0
    return view


def stream_drift(existing: StreamConfig, desired: StreamConfig) -> Drift:
    return _drift(_stream_view(existing), _stream_view(desired))


def _consumer_view(config: ConsumerConfig) -> dict[str, object]:
    view = {name: getattr(config, name) for name in _CONSUMER_FIELDS if name != "filters"}
    # One filter may come back in either field; compare the effective set of subjects, where
    # none (the whole stream) is a setting too.
    view["filters"] = config.filter_subjects or (
        [config.filter_subject] if config.filter_subject else []
    )
    return view


def consumer_drift(existing: ConsumerConfig, desired: ConsumerConfig) -> Drift:
    return _drift(_consumer_view(existing), _consumer_view(desired))


def _refuse_immutable(
    kind: str, name: str, drift: Drift, immutable: frozenset[str], fix: str
) -> None:
    frozen = sorted(immutable & drift.keys())
    if frozen:
        detail = ", ".join(
            f"{key} is {drift[key][0]!r}, wanted {drift[key][1]!r}" for key in frozen
        )
        raise ProvisioningError(
            f"{kind} {name}: {detail}; JetStream cannot change this in place. {fix}"
        )


SUCCEEDED_INACTIVE = timedelta(hours=1)
"""How long a succeeded durable outlives its last pull: old replicas pull every few seconds
until the rollout ends, and a rollback within the hour finds it where they left it."""

RETRY_BACKOFF = Backoff(base=timedelta(milliseconds=200), cap=timedelta(seconds=5))
PEERS_OFFLINE = 10005
"""JetStream's "no suitable peers for placement, peer offline": the cluster is short of the
nodes a replicated stream needs until they come back, unlike a cluster that is too small, which
JetStream reports with other codes and which retrying cannot mend."""


async def _until_answered(kind: str, name: str, attempt: Callable[[], Awaitable[Change]]) -> Change:
    """Forever, like the first connect: a service cannot work without its stream, and the
    process's stop signal cancels the wait."""
    attempts = 0
    while True:
        attempts += 1
        try:
            return await attempt()
        except (*TRANSIENT_ERRORS, APIError) as error:
            if not isinstance(error, TRANSIENT_ERRORS) and error.err_code != PEERS_OFFLINE:
                raise
            delay = RETRY_BACKOFF.delay(attempts).total_seconds()
            log.warning(
                "provision_retry",
                kind=kind,
                name=name,
                attempt=attempts,
                delay=delay,
                error=repr(error),
            )
            await asyncio.sleep(delay)


async def ensure_stream(jsm: JetStreamManager, desired: StreamConfig) -> Change:
    name = desired.name or ""
    return await _until_answered("stream", name, lambda: _ensure_stream_once(jsm, desired))


async def _ensure_stream_once(jsm: JetStreamManager, desired: StreamConfig) -> Change:
    name = desired.name or ""
    try:
        info = await jsm.stream_info(name)
    except NotFoundError:
        await jsm.add_stream(desired)
        return _logged(Change("stream", name, "created"))
    drift = stream_drift(info.config, desired)
    if not drift:
        return Change("stream", name, "unchanged")
    _refuse_immutable(
        "stream",
        name,
        drift,
        _STREAM_IMMUTABLE,
        "Back up the stream (`nats stream backup`), delete it and start a service again.",
    )
    updated = info.config.evolve(**{key: now for key, (_, now) in drift.items()})
    await jsm.update_stream(updated)
    return _logged(Change("stream", name, "updated", drift))


async def ensure_consumer(jsm: JetStreamManager, stream: str, spec: ConsumerSpec) -> Change:
    return await _until_answered(
        "consumer", spec.durable, lambda: _ensure_consumer_once(jsm, stream, spec)
    )


async def _ensure_consumer_once(jsm: JetStreamManager, stream: str, spec: ConsumerSpec) -> Change:
    desired = spec.config()
    try:
        info = await jsm.consumer_info(stream, spec.durable)
    except NotFoundError:
        try:
            await jsm.add_consumer(stream, config=await _succeeding(jsm, stream, spec, desired))
        except APIError:
            if spec.succeeds is None or not await _exists(jsm, stream, spec.durable):
                raise
            # A replica starting beside this one created it first, after an ack floor read a
            # moment apart (the server refuses another start for it): theirs stands.
            return Change("consumer", spec.durable, "unchanged")
        return _logged(Change("consumer", spec.durable, "created"))
    if (
        spec.succeeds
        and _normal(info.config.deliver_policy) == DeliverPolicy.BY_START_SEQUENCE.value
    ):
        desired = desired.evolve(deliver_policy=DeliverPolicy.BY_START_SEQUENCE)  # as created
    drift = consumer_drift(info.config, desired)
    if not drift:
        return Change("consumer", spec.durable, "unchanged")
    _refuse_immutable(
        "consumer",
        spec.durable,
        drift,
        _CONSUMER_IMMUTABLE,
        f"Delete it (`nats consumer rm {stream} {spec.durable}`) to restart it from the "
        "desired position.",
    )
    # Start from the server's config so fields we do not manage keep their values.
    changes = {key: now for key, (_, now) in drift.items() if key != "filters"}
    if "filters" in drift:
        changes["filter_subject"] = desired.filter_subject
        changes["filter_subjects"] = desired.filter_subjects
    await jsm.add_consumer(stream, config=info.config.evolve(**changes))
    return _logged(Change("consumer", spec.durable, "updated", drift))


async def _exists(jsm: JetStreamManager, stream: str, durable: str) -> bool:
    try:
        await jsm.consumer_info(stream, durable)
    except NotFoundError:
        return False
    return True


async def _succeeding(
    jsm: JetStreamManager, stream: str, spec: ConsumerSpec, desired: ConsumerConfig
) -> ConsumerConfig:
    """`desired`, started after the ack floor of the durable it succeeds when that one exists,
    which is then set to expire (see `ConsumerSpec.succeeds`)."""
    if spec.succeeds is None:
        return desired
    try:
        old = await jsm.consumer_info(stream, spec.succeeds)
    except NotFoundError:
        return desired
    threshold = SUCCEEDED_INACTIVE.total_seconds()
    await jsm.add_consumer(stream, config=old.config.evolve(inactive_threshold=threshold))
    floor = old.ack_floor.stream_seq if old.ack_floor and old.ack_floor.stream_seq else 0
    log.info("consumer_succeeds", durable=spec.durable, succeeds=spec.succeeds, after=floor)
    return desired.evolve(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=floor + 1)


async def provision_bus(jsm: JetStreamManager, settings: Settings) -> list[Change]:
    return [await ensure_stream(jsm, config) for config in bus_streams(settings)]


def _logged(change: Change) -> Change:
    log.info(
        "provisioned",
        kind=change.kind,
        name=change.name,
        action=change.action,
        fields={key: [str(was), str(now)] for key, (was, now) in change.fields.items()},
    )
    return change
