"""Issue 10's targets against the figures of one run: the table the issue note quotes as is.

Pure: it reads the report `python -m bench` assembled and decides nothing but met or missed.
A figure that is absent (a bench failed, was cut at its time limit or was not run) is said to
be not measured, with the reason when the report has one, never counted as met.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from typing import Any

from bench.harness import figure

BENCH_LIMIT_S = 15 * 60
RATIO_TARGET = 3.0
LAG_P99_MS = 50.0
REPLAY_SHARE = 0.25
"""The target: a share of the raw read of the same stream in the same run."""
REPLAY_PER_S = 45_000
ISSUE_RAW_READ_PER_S = 180_000
"""The issue's absolute estimate and the raw read it assumed, its reference method's rate (an
ordered consumer with a callback, small messages without headers). The stream a replay reads
carries three headers and ~600 bytes an event, which nats-py reads several times slower, so the
estimate is shown beside what the run measured, by both, not judged."""
HISTORY_S = 1.0
RECOVERY_S = 5.0
RSS_MB = 250.0
TARGET_N = "1000"
RESOURCE_OBJECTS = 10_000
INFRASTRUCTURE = ("kubesim", "nats-server")
"""The cluster and the bus the services run on: measured beside them, not held to their target."""


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _absent(reason: str) -> tuple[str, str]:
    return f"not measured ({reason})", "not measured"


def _complete_total(run: dict[str, Any], scenario: str) -> float | None:
    done = run.get(scenario)
    if done is None or done["converged"] != done["of"]:
        return None
    return float(done["total_s"])


def median_total(runs: list[dict[str, Any]], scenario: str) -> float | None:
    """Median of the runs in which every object converged; None when none did."""
    totals = [t for t in (_complete_total(r, scenario) for r in runs) if t is not None]
    return float(statistics.median(totals)) if totals else None


def paired_ratios(by_operator: Mapping[str, list[dict[str, Any]]], scenario: str) -> list[float]:
    """kopf over gati for each repeat both completed: runs made one after the other share the
    machine's load of the moment, so their spread says how far one run can be trusted."""
    pairs = zip(by_operator.get("gati", []), by_operator.get("kopf", []), strict=False)
    ratios = []
    for gati_run, kopf_run in pairs:
        gati, kopf = _complete_total(gati_run, scenario), _complete_total(kopf_run, scenario)
        if gati is not None and kopf is not None:
            ratios.append(kopf / max(gati, 1e-9))
    return ratios


def ratio(by_operator: Mapping[str, list[dict[str, Any]]], scenario: str) -> float | None:
    """kopf's median seconds over gati's: above 1 means gati-operator is faster."""
    gati = median_total(by_operator.get("gati", []), scenario)
    kopf = median_total(by_operator.get("kopf", []), scenario)
    if gati is None or kopf is None:
        return None
    return round(kopf / max(gati, 1e-9), 2)


def _why_missing(by_operator: Mapping[str, list[dict[str, Any]]], scenario: str) -> str:
    for operator, runs in by_operator.items():
        for run in runs:
            if "error" in run:
                return f"{operator}: {run['error']}"
            done = run.get(scenario)
            if done and done["converged"] < done["of"]:
                return f"{operator}: {done['converged']}/{done['of']} within its time limit"
    return "no complete run of both"


def _peer(
    peers: Mapping[str, Mapping[str, Any]], name: str, keys: tuple[str, ...]
) -> tuple[list[Any], str]:
    """The peer's figures for `keys`, or an empty list and why they are missing."""
    result = peers.get(name)
    if result is None:
        return [], "not run"
    if "error" in result:
        return [], str(result["error"])
    if any(key not in result for key in keys):
        return [], f"bench.{name} reported no {', '.join(k for k in keys if k not in result)}"
    return [result[key] for key in keys], ""


def _ratio_rows(report: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for n, by_operator in report["convergence"].items():
        for scenario, title in (("convergence", "1 convergence"), ("update", "2 update wave")):
            ran = any(scenario in r for runs in by_operator.values() for r in runs)
            if scenario == "update" and not ran:
                continue  # not asked at this N; a convergence that did not run is still a row
            measured = ratio(by_operator, scenario)
            gati = median_total(by_operator.get("gati", []), scenario)
            kopf = median_total(by_operator.get("kopf", []), scenario)
            is_target = scenario == "convergence" and n == TARGET_N
            target = f"≥ {RATIO_TARGET:g}x faster than kopf" if is_target else "reported"
            if measured is None:
                measured_text, met = _absent(_why_missing(by_operator, scenario))
            else:
                measured_text = f"{figure(measured)}x (gati {figure(gati)} s, kopf {figure(kopf)} s"
                pairs = paired_ratios(by_operator, scenario)
                if len(pairs) > 1:
                    measured_text += (
                        f"; {len(pairs)} repeats {figure(min(pairs))}-{figure(max(pairs))}x"
                    )
                measured_text += ")"
                met = _verdict(measured >= RATIO_TARGET) if is_target else "—"
            rows.append(
                {
                    "scenario": f"{title}, N = {int(n):,}",
                    "target": target,
                    "measured": measured_text,
                    "met": met,
                }
            )
    return rows


def _peer_row(
    report: Mapping[str, Any],
    scenario: str,
    target: str,
    name: str,
    keys: tuple[str, ...],
    judge: Callable[[list[Any]], tuple[str, bool | None]],
) -> dict[str, str]:
    values, missing = _peer(report["peers"], name, keys)
    if missing:
        measured, met = _absent(missing)
    else:
        measured, ok = judge(values)
        met = "—" if ok is None else _verdict(ok)
    return {"scenario": scenario, "target": target, "measured": measured, "met": met}


def _resources_row(report: Mapping[str, Any]) -> dict[str, str]:
    scenario = "6 resources"
    result = report.get("resources")
    target = f"< {RSS_MB:g} MB RSS per service at {RESOURCE_OBJECTS:,} objects"
    if not result:
        measured, met = _absent("not run")
    elif "error" in result:
        measured, met = _absent(str(result["error"]))
    else:
        services = {k: v for k, v in result["services"].items() if k not in INFRASTRUCTURE}
        peak = max(v["peak_rss_mb"] for v in services.values())
        done = result["convergence"]
        measured = (
            f"max {figure(peak)} MB at {result['objects']:,} objects ("
            + ", ".join(f"{k} {figure(v['peak_rss_mb'])}" for k, v in services.items())
            + ")"
        )
        if done["converged"] < done["of"]:
            measured += f"; only {done['converged']}/{done['of']} handlers Running in time"
        if result["objects"] < RESOURCE_OBJECTS:
            met = f"not measured at {RESOURCE_OBJECTS:,}"
        else:
            met = _verdict(peak < RSS_MB)
    return {"scenario": scenario, "target": target, "measured": measured, "met": met}


def targets(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per figure issue 10 asks for, in the issue's order, each with its target."""
    rows = _ratio_rows(report)
    rows.append(
        _peer_row(
            report,
            "3 change-to-event lag",
            f"p99 < {LAG_P99_MS:g} ms at 500 changes/s",
            "watcher",
            ("lag_p99_ms", "lag_p50_ms", "lag_rate_per_s"),
            lambda v: (
                f"p99 {figure(v[0])} ms, p50 {figure(v[1])} ms at {figure(v[2])}/s",
                v[0] < LAG_P99_MS,
            ),
        )
    )
    rows.append(
        _peer_row(
            report,
            "3 watcher events/s",
            "reported against raw nats-py publish",
            "watcher",
            ("burst_events_per_s", "raw_publish_per_s"),
            lambda v: (f"{figure(v[0])}/s vs raw {figure(v[1])}/s ({v[0] / v[1]:.0%})", None),
        )
    )
    rows.append(
        _peer_row(
            report,
            "4 replay",
            f"≥ {REPLAY_SHARE:.0%} of the raw read rate of the same stream",
            "replay",
            ("replay_per_s", "raw_read_per_s", "reference_read_per_s"),
            lambda v: (
                f"{figure(v[0])}/s vs raw {figure(v[1])}/s ({v[0] / v[1]:.0%}); the issue's "
                f"~{REPLAY_PER_S:,}/s assumed a {ISSUE_RAW_READ_PER_S:,}/s raw read; its "
                f"reference method reads {figure(v[2])}/s here",
                v[0] >= REPLAY_SHARE * v[1],
            ),
        )
    )
    rows.append(
        _peer_row(
            report,
            "4 history of one object",
            f"< {HISTORY_S:g} s (the command, as a user runs it)",
            "replay",
            ("history_cli_s", "history_s"),
            lambda v: (f"{figure(v[0])} s (in-process {figure(v[1])} s)", v[0] < HISTORY_S),
        )
    )
    rows.append(
        _peer_row(
            report,
            "5 recovery of 1,000 missed changes",
            f"< {RECOVERY_S:g} s",
            "recovery",
            ("recovery_s_median", "recovery_s_min", "recovery_s_max"),
            lambda v: (
                f"{figure(v[1])} / {figure(v[0])} / {figure(v[2])} s (min/med/max)",
                v[0] < RECOVERY_S,
            ),
        )
    )
    rows.append(_resources_row(report))
    elapsed = float(report["elapsed_s"])
    rows.append(
        {
            "scenario": "`make bench`",
            "target": f"< {BENCH_LIMIT_S // 60} min",
            "measured": f"{elapsed / 60:.1f} min",
            "met": _verdict(elapsed < BENCH_LIMIT_S),
        }
    )
    return rows
