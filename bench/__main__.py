"""`make bench`: every benchmark in one run, written to bench/results/latest.json and latest.md.

Scenarios 1 and 2 (bench.convergence) run here for gati-operator and the kopf baseline,
alternating repeat by repeat so load from elsewhere on the machine falls on both alike.

The other benchmarks in this directory (`PEERS`) are owned elsewhere; the interface agreed with
them is the one they already have: `python -m bench.<name>` with its own defaults, in its own
process, printing its result as the last JSON object line on stdout. A missing module is
skipped and a failing one is recorded with its exit code, so one broken bench never hides the
others' figures.

    python -m bench [--quick] [--sizes 100x2,1000x1] [--out bench/results]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.convergence import OPERATORS, run_once
from bench.harness import last_json_line, machine, spread, write_report

BENCH_DIR = Path(__file__).parent
PEERS = ("kubesim", "watcher", "recovery", "reconciler", "replay")
PEER_TIMEOUT = 240.0
DEFAULT_SIZES = "100x2,1000x1"
QUICK_SIZES = "5x2"
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


def run_convergence(sizes: list[tuple[int, int]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Raw runs by N, then operator."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for n, repeats in sizes:
        by_operator: dict[str, list[dict[str, Any]]] = {op: [] for op in OPERATORS}
        for repeat in range(repeats):
            for operator in OPERATORS:
                print(f"bench: N={n} {operator} run {repeat + 1}/{repeats}", flush=True)
                by_operator[operator].append(run_once(operator, n))
        runs[str(n)] = by_operator
    return runs


def _fmt(figure: dict[str, float | int]) -> str:
    return f"{figure['min']} / {figure['median']} / {figure['max']}"


def scenario_rows(runs: dict[str, dict[str, list[dict[str, Any]]]], scenario: str) -> list[Any]:
    """One row per N and operator: min / median / max of the complete runs, and kopf ÷ gati."""
    rows: list[dict[str, Any]] = []
    for n, by_operator in runs.items():
        medians: dict[str, float] = {}
        for operator, results in by_operator.items():
            done = [r[scenario] for r in results if "error" not in r]
            complete = [d for d in done if d["converged"] == d["of"]]
            row: dict[str, Any] = {"N": n, "operator": operator, "runs": len(results)}
            if len(complete) < len(results):
                failed = [
                    r.get("error") or f"{r[scenario]['converged']}/{n} in time" for r in results
                ]
                row["incomplete"] = "; ".join(str(f) for f in failed if f)
            if complete:
                total = spread([d["total_s"] for d in complete])
                medians[operator] = float(total["median"])
                row["total s (min/med/max)"] = _fmt(total)
                row["objects/s (median)"] = round(int(n) / max(float(total["median"]), 1e-9), 1)
                row["p50 s (min/med/max)"] = _fmt(spread([d["p50_s"] for d in complete]))
                row["p99 s (min/med/max)"] = _fmt(spread([d["p99_s"] for d in complete]))
            rows.append(row)
        if "gati" in medians and "kopf" in medians:
            for row in rows[-len(by_operator) :]:
                row["kopf ÷ gati"] = round(medians["kopf"] / medians["gati"], 2)
    return rows


def resource_rows(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> list[Any]:
    rows: list[dict[str, Any]] = []
    for n, by_operator in runs.items():
        for operator, results in by_operator.items():
            measured = [r["resources"] for r in results if "resources" in r]
            for process in measured[0] if measured else {}:
                rss = [m[process]["peak_rss_mb"] for m in measured]
                cpu = [m[process]["cpu_s"] for m in measured]
                rows.append(
                    {
                        "N": n,
                        "operator": operator,
                        "process": process,
                        "peak RSS MB (min/med/max)": _fmt(spread(rss)),
                        "CPU s, both scenarios (min/med/max)": _fmt(spread(cpu)),
                    }
                )
    return rows


def run_peer(name: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"],
            capture_output=True,
            text=True,
            timeout=PEER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {PEER_TIMEOUT:.0f} s"}
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
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}, no peers")
    parser.add_argument("--sizes", default=None, help=f"NxREPEATS,... (default {DEFAULT_SIZES})")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))
    except ValueError as error:
        parser.error(str(error))
    started, clock = datetime.now(UTC), time.perf_counter()
    runs = run_convergence(sizes)
    peers: dict[str, dict[str, Any]] = {}
    if not args.quick:
        for name in PEERS:
            if (BENCH_DIR / f"{name}.py").exists():
                print(f"bench: {name}", flush=True)
                peers[name] = run_peer(name)
    report = {
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - clock, 1),
        "quick": args.quick,
        "machine": machine(),
        "convergence": runs,
        "peers": peers,
        "tables": {
            f"Scenario {title}: seconds until all N done": scenario_rows(runs, key)
            for key, title in SCENARIOS.items()
        }
        | {
            "Resources over scenarios 1 + 2": resource_rows(runs),
            "Other benchmarks": peer_rows(peers),
        },
        "notes": [
            "Every contender gets a fresh kubesim process (same --ready-after) and one warm-up "
            "handler before the clock starts; latencies are per object, from its write to the "
            "watch event showing the goal.",
            "kopf ÷ gati is the ratio of median totals: above 1 means gati-operator is faster.",
        ],
    }
    json_path, md_path = write_report(report, args.out)
    print(md_path.read_text())
    print(f"bench: wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
