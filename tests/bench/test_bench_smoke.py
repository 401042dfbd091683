"""The bench harness and both contenders at tiny N: the figures `make bench` reports can exist.

Timings are not asserted (speed targets live in bench/, not in tests); what is asserted is that
every object converges, every figure is present and the report files are written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from bench.__main__ import main, parse_sizes, peer_rows, scenario_rows
from bench.convergence import run_once
from bench.harness import (
    ResourceSampler,
    cpu_seconds,
    last_json_line,
    percentile,
    rss_mb,
    spread,
)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_spread_reports_min_median_max_and_runs() -> None:
    assert spread([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0, "runs": 3}


def test_last_json_line_skips_the_table_above_it() -> None:
    assert last_json_line('creates/s  10\n{"a": 1}\n[1]\nnot json\n') == {"a": 1}
    assert last_json_line('[{"n": 1}, {"n": 2}]\n') == {"runs": [{"n": 1}, {"n": 2}]}
    with pytest.raises(ValueError, match="no JSON object"):
        last_json_line("only a table\n")


def test_peer_runs_become_one_row_per_figure() -> None:
    rows = peer_rows({"reconciler": {"runs": [{"n": 100}], "elapsed_s": 1.0}})
    assert [row["figure"] for row in rows] == ["runs[0].n", "elapsed_s"]


def test_parse_sizes_names_the_bad_item() -> None:
    assert parse_sizes("100x3, 1000") == [(100, 3), (1000, 1)]
    with pytest.raises(ValueError, match="'tenx2'"):
        parse_sizes("tenx2")
    with pytest.raises(ValueError, match="at least 1"):
        parse_sizes("100x0")


def test_bad_sizes_flag_exits_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--sizes", "lots"])
    assert exit_info.value.code == 2
    assert "--sizes: 'lots'" in capsys.readouterr().err


def test_proc_sampling_sees_this_process() -> None:
    sampler = ResourceSampler({"self": os.getpid()})
    sampler.start()
    sum(i * i for i in range(200_000))
    figures = sampler.stop()["self"]
    assert figures["peak_rss_mb"] >= rss_mb(os.getpid()) * 0.5 > 0
    assert figures["cpu_s"] >= 0
    assert cpu_seconds(os.getpid()) > 0


def test_incomplete_runs_are_reported_not_averaged() -> None:
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        "3": {
            "gati": [{"error": "reconciler is not built"}],
            "kopf": [{"convergence": {"converged": 2, "of": 3, "total_s": 9.0}}],
        }
    }
    rows = scenario_rows(runs, "convergence")
    assert rows[0]["incomplete"] == "reconciler is not built"
    assert rows[1]["incomplete"] == "2/3 in time"
    assert all("total s (min/med/max)" not in row for row in rows)


@pytest.mark.timeout(90)
def test_kopf_baseline_converges_and_follows_an_image_change() -> None:
    result = run_once("kopf", 3)
    assert "error" not in result, result
    for scenario in ("convergence", "update"):
        assert result[scenario]["converged"] == 3
        assert result[scenario]["p99_s"] >= result[scenario]["p50_s"] > 0
    assert set(result["resources"]) == {"kopf", "kubesim"}
    assert result["resources"]["kopf"]["peak_rss_mb"] > 0


@pytest.mark.timeout(120)
def test_quick_report_has_both_contenders_and_the_ratio(tmp_path: Path) -> None:
    assert main(["--quick", "--sizes", "2x1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "latest.json").read_text())
    rows = next(iter(report["tables"].values()))
    assert {row["operator"] for row in rows} == {"gati", "kopf"}
    assert all("kopf ÷ gati" in row for row in rows), rows
    assert "| 2 | kopf |" in (tmp_path / "latest.md").read_text()
