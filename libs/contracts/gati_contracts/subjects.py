"""Stream names and subject roots of the bus (DESIGN.md §3).

JetStream forbids two streams from capturing overlapping subjects, so `GATI` lists its roots
one by one instead of `gati.>`: `gati.metrics.>` belongs to the short-lived `GATI_METRICS`.
"""

from __future__ import annotations

from typing import Final

STREAM: Final = "GATI"
METRICS_STREAM: Final = "GATI_METRICS"
ROUTES_BUCKET: Final = "gati-routes"

CR_ROOT: Final = "gati.cr"
OWNED_ROOT: Final = "gati.owned"
STATUS_ROOT: Final = "gati.status"
ROUTES_ROOT: Final = "gati.routes"
METRICS_ROOT: Final = "gati.metrics"
TRAFFIC_ROOT: Final = "gati.metrics.traffic"

STREAM_SUBJECTS: Final[tuple[str, ...]] = (
    f"{CR_ROOT}.>",
    f"{OWNED_ROOT}.>",
    f"{STATUS_ROOT}.>",
    f"{ROUTES_ROOT}.>",
)
METRICS_STREAM_SUBJECTS: Final[tuple[str, ...]] = (f"{METRICS_ROOT}.>",)
