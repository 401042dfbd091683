"""The scaler's Prometheus series: what it decided, what it asked for, which handlers it holds."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

DECISIONS = Counter(
    "gati_scaler_decisions_total",
    "Scaling decisions in mode events by reason (ScaledUp, Idle, NoFreshSamples...)",
    ["reason"],
)
SCALE_WRITES = Counter(
    "gati_scaler_scale_writes_total", "Replica changes written to a Deployment's /scale"
)
DESIRED_REPLICAS = Gauge(
    "gati_scaler_desired_replicas",
    "Replicas the scaler last decided for a handler",
    ["namespace", "name"],
)
LEASES_HELD = Gauge("gati_scaler_leases_held", "Handlers this replica scales now")
LEASE_ACQUIRED = Counter(
    "gati_scaler_lease_acquired_total",
    "Handler leases taken; takeover: the handler had been scaled before (failover, restart)",
    ["takeover"],
)
LEASE_LOST = Counter(
    "gati_scaler_lease_lost_total", "Held leases that could not be renewed (expired, taken)"
)
SAMPLES_REFUSED = Counter(
    "gati_scaler_samples_refused_total", "Traffic samples refused as malformed or misrouted"
)
TICKS = Counter(
    "gati_scaler_ticks_total", "Passes over the known handlers; stalls when the tick loop does"
)
