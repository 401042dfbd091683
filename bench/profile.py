"""What bounds convergence, with the profile: bench.convergence's scenarios (N handlers created,
then their image changed) with py-spy attached to every Python process of the contender and to
kubesim over exactly the measured window, folded into each process's top functions by self time
and its share of samples by area of the code (bench.stacks), written to bench/results/profile.md.

    python -m bench.profile [--n 1000] [--operator gati|kopf|both] [--raw-dir DIR]

Not part of `make bench`: py-spy's sampling costs the profiled processes CPU, so the timings of
a profiled run are not the benchmark's. Shares stay meaningful on a loaded machine, times do
not; the report states the load. `--gil` keeps only the thread holding the GIL, the one doing
Python work (a watch thread blocked in recv or a loop waiting in epoll is not work); a holder the
OS has preempted still counts, so on a loaded machine samples exceed CPU seconds and places that
wake another process (socket writes) weigh a little more. `--nonblocking` keeps py-spy's cost low
at the price of a stack now and then read while it changed; 100 samples a second over a
1,000-handler run gives thousands per process, enough that such a stack does not move a share.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.convergence import OPERATORS, run_once
from bench.harness import ResourceSampler, kernel_counters, machine, table
from bench.stacks import Profile, fold, parse_raw

PY_SPY = Path(sys.executable).with_name("py-spy")
RATE = 100
NOT_PYTHON = frozenset({"nats-server"})
"""Processes py-spy cannot read; their CPU is still in the report, from /proc."""
SAMPLING = b"Sampling process"
"""What py-spy says once it has attached."""
TOP = 15
STOP_TIMEOUT = 60.0
"""py-spy writes its file when interrupted; thousands of distinct stacks take it a moment."""
RESULTS = Path(__file__).parent / "results" / "profile.md"


def py_spy_command(pid: int, output: Path) -> list[str]:
    return [
        str(PY_SPY),
        "record",
        "--format",
        "raw",
        "--rate",
        str(RATE),
        "--nonblocking",
        "--gil",
        "--function",  # a function's samples under one name, not one per line
        "--pid",
        str(pid),
        "--output",
        str(output),
    ]


@dataclass
class ProfilingSampler(ResourceSampler):
    """bench.convergence's resource sampler that also runs py-spy on each Python process from
    `start()` to `stop()`: `raw_dir/<name>.txt` per process, `failures` for those py-spy could
    not read (named, with what py-spy said), so one unreadable process does not cost the rest.
    `start()` returns once every py-spy samples (or has failed), so the CPU window it opens is
    inside the sampled one."""

    raw_dir: Path = Path()
    failures: dict[str, str] = field(default_factory=dict)
    kernel: dict[str, dict[str, int]] = field(default_factory=dict)
    """Each process's kernel counters over the window (harness.kernel_counters), which say how
    much of a share is system calls and how loaded the machine was for it."""
    _spies: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> None:
        for name, pid in self.pids.items():
            if name not in NOT_PYTHON:
                self._spies[name] = subprocess.Popen(
                    py_spy_command(pid, self.raw_dir / f"{name}.txt"),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
        for name, spy in self._spies.items():
            if (failure := _attach_failure(spy)) is not None:
                self.failures[name] = failure
        self.kernel = _counters(self.pids)
        super().start()

    def stop(self) -> dict[str, dict[str, float]]:
        resources = super().stop()
        after = _counters(self.pids)
        self.kernel = {
            name: {key: value - self.kernel[name][key] for key, value in counters.items()}
            for name, counters in after.items()
            if name in self.kernel
        }
        for name, spy in self._spies.items():
            if name not in self.failures and spy.poll() is None:
                spy.send_signal(signal.SIGINT)
        for name, spy in self._spies.items():
            if name in self.failures:
                continue
            try:
                said, _ = spy.communicate(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                spy.kill()
                said, _ = spy.communicate()
            if spy.returncode != 0 or not (self.raw_dir / f"{name}.txt").exists():
                lines = said.decode(errors="replace").strip().splitlines() or ["no output"]
                self.failures[name] = f"py-spy exited with {spy.returncode}: {lines[0]}"
        return resources


def _counters(pids: Mapping[str, int]) -> dict[str, dict[str, int]]:
    counters = {}
    for name, pid in pids.items():
        try:
            counters[name] = kernel_counters(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited: no figures rather than wrong ones
    return counters


def _attach_failure(spy: subprocess.Popen[bytes]) -> str | None:
    """None once py-spy says it samples; what it said instead if it ended first."""
    assert spy.stdout is not None
    said = []
    for line in iter(spy.stdout.readline, b""):
        if SAMPLING in line:
            return None
        said.append(line.decode(errors="replace").strip())
    first = next((line for line in said if line), "no output")
    return f"py-spy exited with {spy.wait()}: {first}"


def profiles(raw_dir: Path, names: Sequence[str]) -> dict[str, Profile]:
    """The folded profile of every process py-spy wrote a file for."""
    return {
        name: fold(parse_raw(path.read_text()))
        for name in names
        if (path := raw_dir / f"{name}.txt").exists()
    }


def profile_once(operator: str, n: int, raw_dir: Path) -> dict[str, Any]:
    """One bench.convergence run (both scenarios) under py-spy; the run's result with the
    folded profiles under `profiles` and what could not be profiled under `not_profiled`."""
    samplers: list[ProfilingSampler] = []

    def sampler(pids: dict[str, int]) -> ResourceSampler:
        samplers.append(ProfilingSampler(pids, raw_dir=raw_dir))
        return samplers[-1]

    result = run_once(operator, n, sampler=sampler)
    if samplers:
        names = [name for name in samplers[0].pids if name not in NOT_PYTHON]
        result["profiles"] = profiles(raw_dir, names)
        result["not_profiled"] = samplers[0].failures
        result["kernel"] = samplers[0].kernel
    return result


def _ms_per_handler(share: float, cpu_s: float | None, n: int) -> float | str:
    return round(share * cpu_s * 1000 / n, 2) if cpu_s is not None else "-"


def process_section(
    operator: str, name: str, profile: Profile, cpu_s: float | None, n: int
) -> list[str]:
    """One process: its areas (share and the CPU ms per handler that share stands for), then
    its top functions by self time."""
    cpu = f"{cpu_s} s CPU" if cpu_s is not None else "CPU not sampled"
    lines = ["", f"### {operator}: {name} ({profile.samples:,} samples, {cpu})", ""]
    lines += table(
        [
            {
                "area": area,
                "self %": round(share * 100, 1),
                "≈ CPU ms/handler": _ms_per_handler(share, cpu_s, n),
                "on behalf of %": round(behalf * 100, 1),
                "≈ ms/handler on behalf": _ms_per_handler(behalf, cpu_s, n),
            }
            for area, share, behalf in profile.shares()
        ]
    )
    lines += ["", f"Top {TOP} functions by self time:", ""]
    lines += table(
        [
            {"function (file:line)": f"`{label}`", "self %": round(share * 100, 1)}
            for label, share in profile.top(TOP)
        ]
    )
    return lines


def _scenario_line(result: Mapping[str, Any]) -> str:
    parts = []
    for scenario in ("convergence", "update"):
        if scenario in result:
            figures = result[scenario]
            parts.append(
                f"{scenario} {figures['converged']}/{figures['of']} in {figures['total_s']} s"
            )
    return "; ".join(parts) + f" (sampled over {result.get('sampled_s', '?')} s)"


def per_handler_rows(
    resources: Mapping[str, Mapping[str, float]],
    kernel: Mapping[str, Mapping[str, int]],
    n: int,
) -> list[dict[str, Any]]:
    """Per process and for the whole side, per handler over the window: CPU ms, read and write
    system calls, context switches waiting and preempted."""
    rows: list[dict[str, Any]] = []
    for name in resources:
        figures = {"CPU ms": resources[name]["cpu_s"] * 1000, **kernel.get(name, {})}
        rows.append({"process": name} | {key: round(v / n, 2) for key, v in figures.items()})
    if rows:
        keys = [key for key in rows[0] if key != "process"]
        total = {key: round(sum(row.get(key, 0) for row in rows), 2) for key in keys}
        rows.append({"process": "all", **total})
    return rows


def markdown(report: Mapping[str, Any]) -> str:
    """The report: how it was taken, then per contender each process's areas and top functions."""
    info = report["machine"]
    lines = [
        "# Profile: what bounds convergence and the update wave",
        "",
        f"{info['cpu']}, {info['cores']} cores, Python {info['python']}, commit "
        f"{info['commit']}, started {report['started']}, N = {report['n']}; load average "
        f"(1 min) {info['load_1m_at_start']} at the start, {report['load_1m_at_end']} at the "
        f"end. `python -m bench.profile --n {report['n']}`: py-spy {RATE} samples/s "
        "(--gil --nonblocking: the GIL holder only) on each Python process over both scenarios.",
        "",
        "Self time is billed to the leaf Python frame (a C call such as json's encoder to its "
        "caller); areas by the leaf's module path (bench/stacks.py `AREAS`). "
        "≈ CPU ms/handler = share * the process's CPU seconds (from /proc) / N: an estimate, "
        "since CPU outside Python frames (GC, the interpreter, native code) is spread pro rata. "
        "A preempted GIL holder is sampled too, so on a loaded machine samples exceed CPU and "
        "places that wake another process (socket writes) weigh more. On behalf of: work in "
        "generic areas (socket I/O, event loop, json, threads, copy, other) billed to its "
        "innermost caller of a specific area. Timings of a profiled, loaded run are not the "
        "benchmark's; shares are what to read.",
    ]
    for operator, result in report["runs"].items():
        lines += ["", f"## {operator}", ""]
        if "error" in result:
            lines.append(f"Not measured: {result['error']}")
            continue
        lines.append(_scenario_line(result))
        resources = result.get("resources", {})
        lines += [
            "",
            "Per handler over the window: CPU ms; read and write system calls; context "
            "switches waiting and preempted (harness.kernel_counters).",
            "",
            *table(per_handler_rows(resources, result.get("kernel", {}), report["n"])),
        ]
        for name, why in result.get("not_profiled", {}).items():
            lines += ["", f"{name}: not profiled ({why})."]
        for name, profile in result.get("profiles", {}).items():
            cpu_s = resources.get(name, {}).get("cpu_s")
            lines += process_section(operator, name, profile, cpu_s, report["n"])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--operator", choices=(*OPERATORS, "both"), default="both")
    parser.add_argument("--raw-dir", type=Path, help="keep py-spy's raw files here")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    if not PY_SPY.exists():
        parser.error(f"py-spy is not at {PY_SPY}: pip install py-spy into this venv")
    operators = OPERATORS if args.operator == "both" else (args.operator,)
    report: dict[str, Any] = {
        "machine": machine(),
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "n": args.n,
        "runs": {},
    }
    began = time.perf_counter()
    for operator in operators:
        with tempfile.TemporaryDirectory(prefix=f"profile-{operator}-") as tmp:
            raw_dir = args.raw_dir / operator if args.raw_dir else Path(tmp)
            raw_dir.mkdir(parents=True, exist_ok=True)
            print(f"profile {operator} N={args.n}", flush=True)
            report["runs"][operator] = profile_once(operator, args.n, raw_dir)
    report["load_1m_at_end"] = round(os.getloadavg()[0], 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(report))
    print(f"wrote {args.out} in {time.perf_counter() - began:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
