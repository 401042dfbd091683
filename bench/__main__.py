"""`make bench`: every scenario of issue 10 in one run, written to bench/results/latest.json and
latest.md, with the issue's targets met or missed in one table up front. Where the ratio to kopf
falls short, the report also says what bounds each side: CPU per handler of every process
(kubesim and gati's nats-server included, since both are on gati's critical path on 2 cores),
cores busy, and API calls per handler by verb and resource from kubesim's own counters.

Parts, in order, each with a time budget above what it took in a full run on the loaded 2-core
machine (gati's reconciler and kubesim still run ~25 s per 1,000 handlers when it is quiet):
- scenarios 1 and 2 (bench.convergence) for gati-operator and the kopf baseline, alternating
  in the order gati, kopf, kopf, gati, gati, kopf, ... so load from elsewhere and drift over the
  run fall on both alike; N = 1,000, the size the target is set at, is repeated three times
  (one run of each swung 1.2-2.1x between quiet runs), N = 100 and 5,000 are only reported. The
  update wave (2) runs only up to N = 1,000, since the issue sizes only scenario 1 at 5,000.
  N = 5,000 runs last: it is the longest part, and when the whole run's budget is nearly spent
  both contenders get equal shares of what is left, so the ratio stays fair;
- scenarios 3, 4 and 5 (bench.watcher, bench.replay, bench.recovery), owned elsewhere, each in
  its own process with its own defaults, printing its result as the last JSON line on stdout;
- scenario 6 (bench.resources): all four services with 10,000 objects.
A part that runs out of its budget is stopped there and recorded as cut (a scenario keeps the
objects that converged in time); once the whole budget is spent the parts left are recorded as
skipped, so `make bench` always ends and always writes its files. bench.kubesim and
bench.reconciler measure one component alone and are run by hand, not here; so is
bench.profile (`make profile`: the same scenarios under py-spy, each process's time by function
and area in bench/results/profile.md), whose sampling would skew these timings.

    python -m bench [--quick] [--sizes 100x1,1000x3,5000x1] [--budget 840] [--out bench/results]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench.convergence import OPERATORS, run_once, scenario_timeout
from bench.harness import figure, last_json_line, machine, spread, write_report
from bench.resources import OBJECTS
from bench.resources import measure as measure_resources
from bench.summary import TARGET_N, ratio, targets

BENCH_DIR = Path(__file__).parent
PEERS = {"watcher": 150.0, "replay": 300.0, "recovery": 90.0}
"""Peer benchmark → its budget in seconds (they took 61-133, 188-245 and 16-18 under load)."""
DEFAULT_SIZES = "100x1,1000x3,5000x1"
QUICK_SIZES = "5x2"
QUICK_OBJECTS = 40
UPDATE_UP_TO = 1000
BUDGET_S = 14 * 60.0
"""The issue allows 15 minutes; the last minute is for teardown and a part's overrun."""
START_UP_S = 30.0
TEARDOWN_S = 10.0
RESOURCES_BUDGET_S = 180.0
SCENARIOS = {"convergence": "1 convergence", "update": "2 update wave"}


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """`100x3,1000x1` → [(100, 3), (1000, 1)]: N handlers, repeats."""
    sizes: list[tuple[int, int]] = []
    for item in text.split(","):
        n, _, repeats = item.strip().partition("x")
        try:
            size = (int(n), int(repeats or "1"))
        except ValueError:
            raise ValueError(f"--sizes: {item!r} is not N or NxREPEATS, e.g. 1000x3") from None
        if size[0] < 1 or size[1] < 1:
            raise ValueError(f"--sizes: {item!r} needs N and REPEATS of at least 1")
        sizes.append(size)
    return sizes


@dataclass
class Clock:
    """The whole run's budget: progress lines with elapsed time, and each part's deadline."""

    budget_s: float
    started: float = field(default_factory=time.perf_counter)
    parts: list[dict[str, Any]] = field(default_factory=list)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def say(self, text: str) -> None:
        print(f"bench [{self.elapsed():6.1f} s] {text}", flush=True)

    def run(self, name: str, budget_s: float, part: Callable[[float], Any], share: int = 1) -> Any:
        """Runs `part(limit_s)` unless the budget is spent; `share`: parts left that split it."""
        limit = min(budget_s, self.left() / share)
        load = round(os.getloadavg()[0], 1)
        if limit <= START_UP_S / 2:
            self.parts.append(
                {
                    "part": name,
                    "budget s": budget_s,
                    "took s": 0,
                    "load 1m at start": load,
                    "status": "skipped",
                }
            )
            self.say(f"{name}: skipped, the run's {self.budget_s:.0f} s budget is spent")
            return None
        self.say(f"{name} (limit {limit:.0f} s)")
        began = time.perf_counter()
        try:
            result = part(limit)
        except Exception as error:  # one broken part must not hide the others
            result = {"error": f"{type(error).__name__}: {error}"}
        took = time.perf_counter() - began
        status = "ok" if took <= budget_s else "over budget"
        if isinstance(result, dict) and "error" in result:
            status = f"failed: {result['error']}"
        if limit < budget_s:
            status += f" (limit cut to {limit:.0f} s)"
        self.parts.append(
            {
                "part": name,
                "budget s": round(budget_s),
                "took s": round(took, 1),
                # others' work on the machine at the start: a repeat that stands out is told apart
                "load 1m at start": load,
                "status": status,
            }
        )
        self.say(f"{name}: done in {took:.1f} s")
        return result


def convergence_budget(n: int, update: bool) -> float:
    return START_UP_S + scenario_timeout(n) * (2 if update else 1)


def _deadline(limit_s: float) -> float:
    """When a part's measuring must end for its teardown to fit its limit."""
    return time.perf_counter() + max(0.0, limit_s - TEARDOWN_S)


def _contender(operator: str, n: int, update: bool) -> Callable[[float], dict[str, Any]]:
    def run(limit_s: float) -> dict[str, Any]:
        return run_once(operator, n, update=update, deadline=_deadline(limit_s))

    return run


def run_order(repeat: int) -> tuple[str, ...]:
    """Who runs first swaps every repeat (ABBA): a machine growing busier or quieter through the
    run then weighs on both contenders alike instead of always on the second."""
    return OPERATORS if repeat % 2 == 0 else OPERATORS[::-1]


def run_convergence(
    sizes: list[tuple[int, int]], clock: Clock
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Raw runs by N, then operator."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for n, repeats in sizes:
        update = n <= UPDATE_UP_TO
        by_operator: dict[str, list[dict[str, Any]]] = {op: [] for op in OPERATORS}
        left = repeats * len(OPERATORS)
        for repeat in range(repeats):
            for operator in run_order(repeat):
                result = clock.run(
                    f"N={n} {operator} run {repeat + 1}/{repeats}",
                    convergence_budget(n, update),
                    _contender(operator, n, update),
                    share=left,
                )
                left -= 1
                by_operator[operator].append(
                    result if result is not None else {"error": "skipped: bench budget spent"}
                )
        runs[str(n)] = by_operator
    return runs


def _fmt(values: dict[str, float | int]) -> str:
    return " / ".join(figure(values[key]) for key in ("min", "median", "max"))


def scenario_rows(runs: dict[str, dict[str, list[dict[str, Any]]]], scenario: str) -> list[Any]:
    """One row per N and operator: min / median / max of the complete runs, and kopf ÷ gati."""
    rows: list[dict[str, Any]] = []
    for n, by_operator in runs.items():
        if not any(scenario in r for results in by_operator.values() for r in results):
            continue
        for operator, results in by_operator.items():
            done = [r[scenario] for r in results if scenario in r]
            complete = [d for d in done if d["converged"] == d["of"]]
            row: dict[str, Any] = {"N": int(n), "operator": operator, "runs": len(results)}
            if len(complete) < len(results):
                failed = [
                    r.get("error") or f"{r[scenario]['converged']}/{n} in time" for r in results
                ]
                row["incomplete"] = "; ".join(str(f) for f in failed if f)
            if complete:
                total = spread([d["total_s"] for d in complete])
                row["total s (min/med/max)"] = _fmt(total)
                row["objects/s (median)"] = int(n) / max(float(total["median"]), 1e-9)
                row["p50 s (min/med/max)"] = _fmt(spread([d["p50_s"] for d in complete]))
                row["p99 s (min/med/max)"] = _fmt(spread([d["p99_s"] for d in complete]))
            row["kopf ÷ gati"] = ratio(by_operator, scenario) or ""
            rows.append(row)
    return rows


ALL_PROCESSES = "all processes"
CPU_MS = "CPU ms per handler (median)"
CORES = "cores busy (median)"


def _cpu_s(result: dict[str, Any], process: str) -> float:
    used = result["resources"]
    if process == ALL_PROCESSES:
        return float(sum(figures["cpu_s"] for figures in used.values()))
    return float(used[process]["cpu_s"])


def resource_rows(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> list[Any]:
    """Per process and for the contender's side as a whole: RSS, CPU, and cores busy (CPU over
    the wall time sampled), which says what bounds it: one process near 1 core is held by its
    own interpreter, a side near the machine's 2 by the machine."""
    rows: list[dict[str, Any]] = []
    for n, by_operator in runs.items():
        for operator, results in by_operator.items():
            measured = [r for r in results if "resources" in r and "sampled_s" in r]
            if not measured:
                continue
            scenarios = "1 + 2" if any("update" in r for r in results) else "1"
            for process in [*measured[0]["resources"], ALL_PROCESSES]:
                cpu = [_cpu_s(r, process) for r in measured]
                busy = [
                    c / max(float(r["sampled_s"]), 1e-9) for c, r in zip(cpu, measured, strict=True)
                ]
                rss = (
                    _fmt(spread([r["resources"][process]["peak_rss_mb"] for r in measured]))
                    if process != ALL_PROCESSES
                    else ""
                )
                rows.append(
                    {
                        "N": int(n),
                        "operator": operator,
                        "process": process,
                        "scenarios": scenarios,
                        "peak RSS MB (min/med/max)": rss,
                        "CPU s (min/med/max)": _fmt(spread(cpu)),
                        CPU_MS: float(spread(cpu)["median"]) * 1000 / int(n),
                        CORES: spread(busy)["median"],
                    }
                )
    return rows


def bounds_row(rows: list[dict[str, Any]]) -> dict[str, str] | None:
    """The targets table's line on what bounds each side at the target's N (from
    resource_rows): its CPU per handler, process by process, and its busiest process."""
    at = [row for row in rows if row["N"] == int(TARGET_N)]
    sides = []
    for operator in OPERATORS:
        mine = [row for row in at if row["operator"] == operator]
        processes = [row for row in mine if row["process"] != ALL_PROCESSES]
        if not processes:
            continue
        [total] = [row for row in mine if row["process"] == ALL_PROCESSES]
        busiest = max(processes, key=lambda row: float(row[CORES]))
        each = ", ".join(f"{row['process']} {figure(row[CPU_MS])}" for row in processes)
        sides.append(
            f"{operator} {figure(total[CPU_MS])} ({each}; busiest {busiest['process']} "
            f"{figure(busiest[CORES])} cores, all {figure(total[CORES])})"
        )
    if not sides:
        return None
    return {
        "scenario": f"1 + 2 what bounds each side, N = {int(TARGET_N):,}",
        "target": "reported: CPU ms per handler, cores busy of 2",
        "measured": "; ".join(sides),
        "met": "—",
    }


def with_bounds(target_rows: list[dict[str, str]], bounds: dict[str, str] | None) -> list[Any]:
    """The bounds line right after the target's own rows, where the note quoting it needs it."""
    if bounds is None:
        return target_rows
    after = [i for i, row in enumerate(target_rows) if f"N = {int(TARGET_N):,}" in row["scenario"]]
    at = after[-1] + 1 if after else len(target_rows)
    return [*target_rows[:at], bounds, *target_rows[at:]]


def api_call_rows(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> list[Any]:
    """The median run's API calls per handler, by verb and resource, most frequent first."""
    rows: list[dict[str, Any]] = []
    for n, by_operator in runs.items():
        for operator, results in by_operator.items():
            calls = [r["api_calls"] for r in results if "api_calls" in r]
            if not calls:
                continue
            keys = list(dict.fromkeys(key for run in calls for key in run))
            median = {
                key: float(spread([run.get(key, 0.0) for run in calls])["median"]) for key in keys
            }
            ranked = sorted(median.items(), key=lambda item: (-item[1], item[0]))
            rows.append(
                {
                    "N": int(n),
                    "operator": operator,
                    "runs": len(calls),
                    "calls per handler (median)": sum(median.values()),
                    "by verb and resource": ", ".join(f"{k} {figure(v)}" for k, v in ranked),
                }
            )
    return rows


def service_rows(result: dict[str, Any] | None) -> list[Any]:
    """Scenario 6, one row per process."""
    if not result or "error" in result:
        return []
    return [
        {
            "process": name,
            "objects": result["objects"],
            "idle RSS MB": figures.get("idle_rss_mb", ""),
            "peak RSS MB": figures["peak_rss_mb"],
            "MB per 1,000 handlers": figures.get("rss_mb_per_1000_handlers", ""),
            "CPU s": figures["cpu_s"],
        }
        for name, figures in result["services"].items()
    ]


def run_peer(name: str, limit_s: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"],
            capture_output=True,
            text=True,
            timeout=limit_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"cut at its {limit_s:.0f} s limit"}
    elapsed = round(time.perf_counter() - started, 1)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}", "stderr": tail, "elapsed_s": elapsed}
    try:
        return {**last_json_line(done.stdout), "elapsed_s": elapsed}
    except ValueError as error:
        return {"error": str(error), "elapsed_s": elapsed}


def _figures(result: dict[str, Any]) -> list[tuple[str, Any]]:
    """Figures one per row; the runs of a bench that reports several sizes as `runs[i].key`."""
    figures: list[tuple[str, Any]] = []
    for key, value in result.items():
        if key == "runs" and isinstance(value, list):
            figures += [
                (f"runs[{i}].{k}", v) for i, run in enumerate(value) for k, v in run.items()
            ]
        else:
            figures.append((key, value))
    return figures


def peer_rows(peers: dict[str, dict[str, Any]]) -> list[Any]:
    return [
        {"bench": name, "figure": key, "value": value}
        for name, result in peers.items()
        for key, value in _figures(result)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"sizes {QUICK_SIZES}, {QUICK_OBJECTS} objects, no peers",
    )
    parser.add_argument("--sizes", default=None, help=f"NxREPEATS,... (default {DEFAULT_SIZES})")
    parser.add_argument("--objects", type=int, default=None, help=f"scenario 6 (default {OBJECTS})")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for the whole run")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))
    except ValueError as error:
        parser.error(str(error))
    objects = args.objects or (QUICK_OBJECTS if args.quick else OBJECTS)
    started, clock, info = datetime.now(UTC), Clock(args.budget), machine()
    last = [size for size in sizes if size[0] > UPDATE_UP_TO]
    runs = run_convergence([size for size in sizes if size[0] <= UPDATE_UP_TO], clock)
    peers: dict[str, dict[str, Any]] = {}
    if not args.quick:
        for name, budget in PEERS.items():
            result = clock.run(f"bench.{name}", budget, partial(run_peer, name))
            peers[name] = result if result is not None else {"error": "skipped: budget spent"}
    resources = clock.run(
        f"scenario 6 at {objects:,} objects",
        RESOURCES_BUDGET_S,
        lambda limit: measure_resources(objects, _deadline(limit)),
    ) or {"error": "skipped: bench budget spent"}
    runs |= run_convergence(last, clock)
    report = {
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": round(clock.elapsed(), 1),
        "load_1m_at_end": round(os.getloadavg()[0], 1),
        "quick": args.quick,
        "machine": info,
        "convergence": runs,
        "peers": peers,
        "resources": resources,
        "parts": clock.parts,
    }
    used = resource_rows(runs)
    report["tables"] = {
        "Issue 10 targets": with_bounds(targets(report), bounds_row(used)),
        **{
            f"Scenario {title}: seconds until all N done": scenario_rows(runs, key)
            for key, title in SCENARIOS.items()
        },
        "Resources over scenarios 1 + 2 (CPU from the first write to the last object done)": used,
        "API calls per handler over scenarios 1 + 2 (kubesim's apiserver_request_total)": (
            api_call_rows(runs)
        ),
        f"Scenario 6: every service at {objects:,} objects": service_rows(resources),
        "Scenarios 3-5 and what else the peer benches print": peer_rows(peers),
        "Time budget": clock.parts,
    }
    report["notes"] = [
        "Every contender gets a fresh kubesim process (same --ready-after) and one warm-up "
        "handler before the clock starts; latencies are per object, from its write to the "
        "watch event showing the goal.",
        "kopf ÷ gati is the ratio of median totals: above 1 means gati-operator is faster; "
        "the targets table adds the range of the ratios of runs made one after the other.",
        "Cores busy is a process's CPU seconds over the wall time sampled: near 1 a process is "
        "held by its own interpreter, and a side whose processes sum near the machine's 2 cores "
        "by the machine, so there every CPU second saved on that side (kubesim and nats-server "
        "included) is wall time saved.",
        "API calls leave out the benchmark's own creates and image changes; a successful call "
        "counts as verb and resource whatever its 2xx code, an error under its code. kubesim's "
        "metrics do not tell the status subresource from the object.",
        "Scenario 6 counts the operator's API objects (each GatiHandler with its ConfigMap, "
        "Service and Deployment), as the API server lists them; MB per 1,000 handlers is peak "
        "minus idle RSS, to extrapolate to a larger cluster.",
    ]
    json_path, md_path = write_report(report, args.out)
    print(md_path.read_text())
    clock.say(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
