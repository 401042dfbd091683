"""The figures each fault test measures, printed and (with `GATI_FAULT_FIGURES=<file>`) appended
as one JSON line, so docs/reliability.md quotes a real run rather than a memory of one."""

from __future__ import annotations

import json
import os
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

FIGURES_ENV = "GATI_FAULT_FIGURES"


@dataclass(frozen=True)
class FaultFigures:
    fault: str
    changes: int
    """Spec writes the API server accepted during the burst."""
    recorded: int
    """Distinct handler generations the stream holds (a restarted watcher relists only the
    latest state, so this may be below `changes` without anything being lost)."""
    lost: int
    """Objects whose current state is not the last event of their subject (verify drift)."""
    duplicated: int
    converge_after_fault_s: float
    """From the end of the fault (last kill, node back, faults cleared) to every handler
    converged; 0 when the operator had converged while the fault was still on."""
    extra: dict[str, float | int | str] = field(default_factory=dict)


def record(figures: FaultFigures) -> None:
    line = json.dumps(asdict(figures), sort_keys=True)
    print(f"fault figures: {line}")
    target = os.environ.get(FIGURES_ENV)
    if target:
        with Path(target).open("a") as out:
            out.write(line + "\n")


def api_request_counts(url: str) -> Counter[tuple[str, str, str]]:
    """Requests kubesim has answered by (verb, resource, code), from `apiserver_request_total`."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: Counter[tuple[str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                labels = sample.labels
                counts[(labels["verb"], labels["resource"], labels["code"])] += int(sample.value)
    return counts


def api_requests(url: str) -> int:
    """Requests answered, watches left out: a watch is one long request, not a rate."""
    return sum(n for (verb, _, _), n in api_request_counts(url).items() if verb != "watch")
