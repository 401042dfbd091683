"""bench.stacks' folding on tiny synthetic py-spy raw files, bench.profile's report from folded
profiles, and its py-spy edge against real processes (no timing is asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.harness import kernel_counters
from bench.profile import ProfilingSampler, markdown, profiles
from bench.stacks import AREAS, Frame, fold, parse_frame, parse_raw

LOOP = "Runner.run (asyncio/runners.py:86);Handle._run (asyncio/events.py:78)"
RAW = f"""\
{LOOP};Client._flusher (nats/aio/client.py:2040);StreamWriter.writelines (asyncio/streams.py:345) 6
{LOOP};reconcile (gati_reconciler/reconcile.py:10);render (gati_reconciler/manifests.py:40) 3
{LOOP};reconcile (gati_reconciler/reconcile.py:10);info (gati_runtime/logging.py:5) 2
{LOOP};reconcile (gati_reconciler/reconcile.py:10);dumps (json/__init__.py:183) 1

Runner.run (asyncio/runners.py:86) 4
{LOOP};odd (somewhere/else.py:1) 1
 2
{LOOP};Client._flusher (nats/aio/client.py:2040);StreamWriter.writelines (asyncio/streams.py:345) 1
"""


def test_parse_raw_counts_samples_per_stack_and_keeps_empty_stacks() -> None:
    stacks = parse_raw(RAW)
    assert sum(stacks.values()) == 20
    flusher = (*LOOP.split(";"), "Client._flusher (nats/aio/client.py:2040)")
    assert stacks[(*flusher, "StreamWriter.writelines (asyncio/streams.py:345)")] == 7
    assert stacks[()] == 2  # read while the stack changed: counted, not dropped


def test_a_line_that_is_not_raw_format_is_named_by_its_number() -> None:
    with pytest.raises(ValueError, match=r"line 2: expected 'frame;\.\.\.;frame COUNT'"):
        parse_raw("a (b.py:1) 3\nnot a count\n")


def test_frames_with_and_without_a_file() -> None:
    assert parse_frame("Store.replace (gati_kubesim/store.py:129)") == Frame(
        "Store.replace", "gati_kubesim/store.py", 129
    )
    assert parse_frame("_run_code (<frozen runpy>:65)") == Frame("_run_code", "<frozen runpy>", 65)
    assert parse_frame("<native>").label == "<native>"


def test_self_time_goes_to_the_leaf_and_areas_by_longest_prefix() -> None:
    profile = fold(parse_raw(RAW))
    assert profile.samples == 20
    assert profile.top(2) == [
        ("StreamWriter.writelines (asyncio/streams.py:345)", 7 / 20),
        ("Runner.run (asyncio/runners.py:86)", 4 / 20),
    ]
    assert profile.areas == Counter(
        {
            "socket I/O": 7,
            "event loop": 4,
            "reconcile/render/diff": 3,
            # gati_runtime/logging.py is logging, not the gati_runtime/ package's other modules
            "logging": 2,
            "json/msgspec": 1,
            "other": 3,  # the unknown file and the two empty stacks
        }
    )


def test_generic_work_is_also_billed_to_its_innermost_specific_caller() -> None:
    callers = fold(parse_raw(RAW)).callers
    assert callers["nats-py"] == 7  # the socket writes of nats-py's flusher
    assert callers["reconcile/render/diff"] == 4  # its own render and its json.dumps
    # uvloop's own work (a Runner.run leaf) stays the loop's: nothing above it is specific
    assert callers["event loop"] == 4
    assert callers["socket I/O"] == 0


def test_shares_list_every_area_by_leaf_and_on_behalf() -> None:
    shares = {area: (mine, behalf) for area, mine, behalf in fold(parse_raw(RAW)).shares()}
    assert shares["socket I/O"] == (7 / 20, 0.0)
    assert shares["nats-py"] == (0.0, 7 / 20)
    assert fold(Counter()).shares() == []
    assert fold(Counter()).top(3) == []


def test_a_prefix_in_two_areas_is_refused() -> None:
    with pytest.raises(ValueError, match="'nats/' is in areas 'a' and 'b'"):
        fold(Counter({("x (nats/x.py:1)",): 1}), {"a": ("nats/",), "b": ("nats/",)})
    fold(Counter({("x (nats/x.py:1)",): 1}), AREAS)  # the shipped table is unambiguous


def test_report_shows_areas_top_functions_cpu_per_handler_and_what_was_not_profiled() -> None:
    report = {
        "machine": {
            "cpu": "cpu",
            "cores": 2,
            "python": "3.11",
            "commit": "abc1234",
            "load_1m_at_start": 8.0,
        },
        "started": "2026-11-27 09:00 UTC",
        "n": 1000,
        "load_1m_at_end": 9.5,
        "runs": {
            "gati": {
                "convergence": {"converged": 1000, "of": 1000, "total_s": 20.0},
                "sampled_s": 30.0,
                "resources": {"reconciler": {"cpu_s": 20.0}, "nats-server": {"cpu_s": 4.0}},
                "kernel": {
                    "reconciler": {"reads": 3000, "writes": 60000, "waits": 1000, "preempted": 500}
                },
                "profiles": {"reconciler": fold(parse_raw(RAW))},
                "not_profiled": {"watcher": "py-spy exited with 1: Error: no python"},
            },
            "kopf": {"error": "a single GatiHandler did not reach Running in 60 s"},
        },
    }
    text = markdown(report)
    assert "commit abc1234" in text
    assert "N = 1000" in text
    assert "8.0 at the start" in text
    assert "### gati: reconciler (20 samples, 20.0 s CPU)" in text
    assert "| process | CPU ms | reads | writes | waits | preempted |" in text
    assert "| reconciler | 20 | 3 | 60 | 1 | 0.5 |" in text
    assert "| nats-server | 4 |  |  |  |  |" in text  # counters it could not read: none shown
    assert "| all | 24 | 3 | 60 | 1 | 0.5 |" in text
    # socket I/O: 35 % of 20 s over 1,000 handlers is 7 ms each, all of it on nats-py's behalf
    assert "| socket I/O | 35 | 7 | 0 | 0 |" in text
    assert "| nats-py | 0 | 0 | 35 | 7 |" in text
    assert "| `StreamWriter.writelines (asyncio/streams.py:345)` | 35 |" in text
    assert "watcher: not profiled (py-spy exited with 1: Error: no python)" in text
    assert "Not measured: a single GatiHandler did not reach Running in 60 s" in text


@pytest.fixture
def python_child() -> Iterator[int]:
    """A Python process that is busy until killed, started before py-spy looks at it."""
    code = "import sys; print('up', flush=True)\nwhile True: sum(range(1000))"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline() == "up\n"
    yield child.pid
    child.kill()
    child.wait()


@pytest.mark.timeout(120)
def test_sampler_profiles_python_processes_and_names_what_py_spy_cannot_read(
    tmp_path: Path, python_child: int
) -> None:
    not_python = subprocess.Popen(["sleep", "600"])
    try:
        pids = {"busy": python_child, "sleeper": not_python.pid, "nats-server": not_python.pid}
        sampler = ProfilingSampler(pids, raw_dir=tmp_path)
        sampler.start()
        resources = sampler.stop()
    finally:
        not_python.kill()
        not_python.wait()
    assert set(resources) == {"busy", "sleeper", "nats-server"}  # CPU of all, from /proc
    assert set(sampler.kernel) == {"busy", "sleeper", "nats-server"}
    assert all(value >= 0 for value in sampler.kernel["busy"].values())
    assert set(sampler.failures) == {"sleeper"}
    assert sampler.failures["sleeper"].startswith("py-spy exited with 1: Error")
    folded = profiles(tmp_path, ["busy", "sleeper"])
    assert set(folded) == {"busy"}  # nats-server is not Python: py-spy was not started on it
    assert folded["busy"].samples >= 0


def test_kernel_counters_count_this_process_writes() -> None:
    read_end, write_end = os.pipe()
    try:
        before = kernel_counters(os.getpid())
        for _ in range(3):
            os.write(write_end, b"x")
        after = kernel_counters(os.getpid())
    finally:
        os.close(read_end)
        os.close(write_end)
    assert after["writes"] - before["writes"] >= 3
    assert set(after) == {"reads", "writes", "waits", "preempted"}
