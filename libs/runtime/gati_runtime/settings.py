"""What a service is told at start-up: `GATI_*` environment variables, overridden by flags.

Every setting has exactly one name, its environment variable (the pydantic alias); the flag is
derived from it (`GATI_NATS_URL` → `--nats-url`), so the two can never drift apart and a bad
value is reported with the name the operator actually typed.
"""

from __future__ import annotations

import argparse
import difflib
import os
import socket
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

import structlog
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FilePath,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from gati_contracts.durations import parse_duration
from gati_contracts.problems import describe
from gati_contracts.quantities import parse_quantity
from gati_contracts.subjects import METRICS_STREAM, STREAM
from gati_runtime.redaction import DEFAULT_REDACT_FIELDS, Redaction

ENV_PREFIX = "GATI_"
# JetStream de-duplicates by Nats-Msg-Id only inside this window; watchers that relist after a
# restart must fall inside it, which is why DESIGN.md §3 sets a floor of two minutes.
MIN_DUPLICATE_WINDOW = timedelta(minutes=2)

log = structlog.get_logger(__name__)


class SettingsError(ValueError):
    """Bad settings, one line per problem, each naming the variable or flag to fix."""


@dataclass(frozen=True)
class UnknownVariable:
    """A `GATI_*` variable nothing reads: most likely a typo, whose setting then silently keeps
    its default, so it is reported (never refused: a setting a newer version added must not
    stop an older service sharing its ConfigMap)."""

    name: str
    closest: str | None
    """The known name it most resembles, the one probably meant; None when none is close."""


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value.strip())
    return value


def _byte_size(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text == "-1":
            return -1
        size = parse_quantity(text)
        if size != size.to_integral_value() or size < 0:
            raise ValueError(f"{text!r} must be a whole number of bytes such as 1Gi, or -1")
        return int(size)
    return value


def _name_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _redaction(value: Any) -> Any:
    if isinstance(value, str | list | tuple):
        return Redaction.parse(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
ByteSize = Annotated[int, Field(ge=-1), BeforeValidator(_byte_size)]
Replicas = Annotated[int, Field(ge=1, le=5)]
NameList = Annotated[tuple[str, ...], BeforeValidator(_name_list)]


class StreamLimits(BaseModel):
    """The retention a stream is provisioned with; provisioning compares it with the server's."""

    model_config = ConfigDict(frozen=True)

    name: str
    max_age: timedelta
    max_bytes: int
    replicas: int
    duplicate_window: timedelta


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    nats_url: str = Field(
        "nats://127.0.0.1:4222",
        alias="GATI_NATS_URL",
        description="NATS server URLs, comma-separated; user and password may be in the URL.",
    )
    # FilePath: a missing credentials file is reported at start-up, naming the variable,
    # instead of as an obscure failure inside the NATS handshake.
    nats_creds: FilePath | None = Field(
        None, alias="GATI_NATS_CREDS", description="NATS `.creds` file (JWT and nkey seed)."
    )
    nats_tls_cert: FilePath | None = Field(
        None, alias="GATI_NATS_TLS_CERT", description="Client certificate for mutual TLS."
    )
    nats_tls_key: FilePath | None = Field(
        None, alias="GATI_NATS_TLS_KEY", description="Key of `GATI_NATS_TLS_CERT`."
    )
    nats_tls_ca: FilePath | None = Field(
        None, alias="GATI_NATS_TLS_CA", description="CA bundle the NATS server is verified with."
    )

    stream: str = Field(
        STREAM, alias="GATI_STREAM", description="JetStream stream of changes and decisions."
    )
    stream_max_age: Duration = Field(
        timedelta(days=7),
        alias="GATI_STREAM_MAX_AGE",
        description="How long the stream keeps events; 0 keeps them until the size limit.",
    )
    stream_max_bytes: ByteSize = Field(
        -1,
        alias="GATI_STREAM_MAX_BYTES",
        description="Size limit of the stream, a quantity such as `10Gi`; -1 for none.",
    )
    stream_replicas: Replicas = Field(
        1, alias="GATI_STREAM_REPLICAS", description="Copies of the stream across NATS nodes."
    )
    duplicate_window: Duration = Field(
        MIN_DUPLICATE_WINDOW,
        alias="GATI_DUPLICATE_WINDOW",
        description="JetStream de-duplication window; at least 2m, at most the stream's age.",
    )

    metrics_stream: str = Field(
        METRICS_STREAM,
        alias="GATI_METRICS_STREAM",
        description="Short-lived stream of traffic samples; must differ from `GATI_STREAM`.",
    )
    metrics_max_age: Duration = Field(
        timedelta(hours=1),
        alias="GATI_METRICS_MAX_AGE",
        description="How long traffic samples are kept for scaling and health gates.",
    )
    metrics_max_bytes: ByteSize = Field(
        -1,
        alias="GATI_METRICS_MAX_BYTES",
        description="Size limit of the metrics stream, a quantity such as `1Gi`; -1 for none.",
    )
    metrics_replicas: Replicas = Field(
        1, alias="GATI_METRICS_REPLICAS", description="Copies of the metrics stream."
    )

    routes_history: int = Field(
        64,
        ge=1,
        le=64,
        alias="GATI_ROUTES_HISTORY",
        description="Revisions kept per key of the `gati-routes` bucket (`routes --at`).",
    )
    # Decommissioned GatiVersion records kept per path (newest first), as Knative bounds
    # non-active revisions; timescape deletes older ones whose GatiHandler is gone.
    decommissioned_retention: int = Field(
        20,
        ge=0,
        alias="GATI_DECOMMISSIONED_RETENTION",
        description="Decommissioned GatiVersions kept per path; older ones are deleted.",
    )

    instance_id: str = Field(
        default_factory=socket.gethostname,
        alias="GATI_INSTANCE_ID",
        description="This replica's name in events and leases; the pod name in a cluster.",
    )
    namespaces: NameList = Field(
        (),
        alias="GATI_NAMESPACES",
        description="Namespaces to watch, comma-separated; all if empty.",
    )
    http_port: int = Field(
        8080,
        ge=0,
        le=65535,
        alias="GATI_HTTP_PORT",
        description="Port of `/healthz`, `/readyz` and `/metrics`; 0 picks a free one.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", alias="GATI_LOG_FORMAT", description="`auto`: console on a terminal, else JSON."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", alias="GATI_LOG_LEVEL", description="Lowest level logged."
    )
    shutdown_grace: Duration = Field(
        timedelta(seconds=25),
        alias="GATI_SHUTDOWN_GRACE",
        description="Time to finish in-flight work on SIGTERM; below the pod's grace period.",
    )
    kube_context: str | None = Field(
        None,
        alias="GATI_KUBE_CONTEXT",
        description="Context of the kubeconfig (`KUBECONFIG`, `~/.kube/config`); unset: current.",
    )
    # Parsed at start-up so a bad path stops the watcher naming the variable, not mid-publish.
    redact_fields: Annotated[Redaction, BeforeValidator(_redaction)] = Field(
        Redaction.parse(DEFAULT_REDACT_FIELDS),
        alias="GATI_REDACT_FIELDS",
        description="Object fields the watcher masks before publishing, comma-separated "
        'jsonpath-like paths (`[*]` for every item, `["a.b"]` for keys with dots); `none` '
        "turns masking off.",
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        problems: list[str] = []
        if self.duplicate_window < MIN_DUPLICATE_WINDOW:
            problems.append(
                f"GATI_DUPLICATE_WINDOW must be at least 2m so replicas' duplicate publishes "
                f"are dropped (got {self.duplicate_window})"
            )
        if self.stream_max_age and self.stream_max_age < self.duplicate_window:
            problems.append(
                "GATI_STREAM_MAX_AGE must not be shorter than GATI_DUPLICATE_WINDOW: JetStream "
                "would silently shrink the de-duplication window"
            )
        if bool(self.nats_tls_cert) != bool(self.nats_tls_key):
            problems.append("GATI_NATS_TLS_CERT and GATI_NATS_TLS_KEY must be set together")
        if self.stream == self.metrics_stream:
            problems.append("GATI_STREAM and GATI_METRICS_STREAM must name different streams")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def nats_servers(self) -> list[str]:
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    @property
    def stream_limits(self) -> StreamLimits:
        return StreamLimits(
            name=self.stream,
            max_age=self.stream_max_age,
            max_bytes=self.stream_max_bytes,
            replicas=self.stream_replicas,
            duplicate_window=self.duplicate_window,
        )

    @property
    def metrics_limits(self) -> StreamLimits:
        # Traffic samples are published once per window by one router: a shorter retention
        # may clip the window, which JetStream allows; the floor only guards `GATI`.
        return StreamLimits(
            name=self.metrics_stream,
            max_age=self.metrics_max_age,
            max_bytes=self.metrics_max_bytes,
            replicas=self.metrics_replicas,
            duplicate_window=min(self.duplicate_window, self.metrics_max_age or timedelta.max),
        )

    _unknown: tuple[UnknownVariable, ...] = PrivateAttr(default=())

    @property
    def unknown_variables(self) -> tuple[UnknownVariable, ...]:
        """The `GATI_*` names of the environment `load` read that nothing reads."""
        return self._unknown

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        args: argparse.Namespace | None = None,
        *,
        also_known: Collection[str] = (),
    ) -> Settings:
        """Environment first, then any flag given on the command line wins. `also_known`: the
        variables read beside `Settings` (a service's own tuning), so they are not reported as
        unknown; the report waits in `unknown_variables` until logging is configured."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {
            name: value for name, value in env.items() if name in _ALIASES and value != ""
        }
        if args is not None:
            for name in _ALIASES:
                flag_value = getattr(args, _dest(name), None)
                if flag_value is not None:
                    values[name] = flag_value
        try:
            settings = cls.model_validate(values)
        except ValidationError as error:
            raise SettingsError(describe(error)) from error
        settings._unknown = unknown_variables(env, also_known)
        return settings

    def log_unknown_variables(self) -> None:
        """One structured warning per unknown variable, naming the one probably meant."""
        for variable in self._unknown:
            log.warning("unknown_setting", variable=variable.name, closest=variable.closest)


def unknown_variables(
    environ: Mapping[str, str], also_known: Collection[str] = ()
) -> tuple[UnknownVariable, ...]:
    """`GATI_*` names that are neither a setting nor in `also_known`, each with the closest
    known name by `difflib` (compared without the `GATI_` every name shares, which would make
    any two look alike)."""
    known = {name.removeprefix(ENV_PREFIX): name for name in (*_ALIASES, *also_known)}
    unknown = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name.removeprefix(ENV_PREFIX) not in known:
            close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), known, n=1)
            unknown.append(UnknownVariable(name, known[close[0]] if close else None))
    return tuple(unknown)


def _dest(env_name: str) -> str:
    return env_name.removeprefix(ENV_PREFIX).lower()


_ALIASES: tuple[str, ...] = tuple(
    field.alias for field in Settings.model_fields.values() if field.alias is not None
)


def add_settings_arguments(
    parser: argparse.ArgumentParser, names: Sequence[str] = _ALIASES
) -> None:
    """One `--flag` per setting; defaults stay None so unset flags never mask the environment."""
    group = parser.add_argument_group("settings (flags override GATI_* environment variables)")
    for name in names:
        group.add_argument(
            "--" + _dest(name).replace("_", "-"),
            dest=_dest(name),
            default=None,
            metavar="VALUE",
            help=f"overrides {name}",
        )
