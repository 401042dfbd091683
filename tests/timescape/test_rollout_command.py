"""`gati-operator rollout` driving a real rollout: watcher, reconciler and timescape against
kubesim and nats-server, the command run as a user runs it (KUBECONFIG, exit codes)."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from fixtures.stage import Stage
from fixtures.subject_tail import WAIT as SUITE_WAIT
from gati_cli.main import main
from reconciler.harness import Workloads, outcomes, running_reconciler
from timescape.running import has_weights, recorded_version, routes, running_timescape
from timescape.test_service import STARTING_CHECKS, version

WAIT = f"{SUITE_WAIT:g}"
"""`--wait`: the suite's margin for a loaded machine; the command returns once it is taken."""


async def rollout(namespace: str, *args: str) -> int:
    """The command in a thread: it blocks on the API while the services run in this loop."""
    argv = ["rollout", *args, "-n", namespace, "--wait", WAIT]
    return await asyncio.to_thread(main, argv)


async def test_every_rollout_command_steers_a_real_rollout(
    stage: Stage,
    gati_kubeconfig: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gati_api, gati_connection, _, workloads = stage
    ns = workloads.namespace
    manual: dict[str, Any] = {
        "steps": [{"weight": 10}, {"weight": 50, "pause": "1h"}, {"weight": 100}],
        "analysis": {"interval": "1s", "failureThreshold": STARTING_CHECKS},
    }
    v2 = version(ns, "users-v2", "v2", "acme/u:2")
    v2["spec"]["timescape"] = {"rollout": manual}
    async with (
        routes(gati_connection) as tables,
        running_reconciler(gati_api, gati_connection),
        running_timescape(gati_api, gati_connection),
    ):
        workloads.create(version(ns, "users-v1", "v1", "acme/u:1"))
        await tables.until(partial(has_weights, {"v1": 100}))
        workloads.create(v2)
        # A step without pause waits for promote.
        await tables.until(partial(has_weights, {"v1": 90, "v2": 10}))

        assert await rollout(ns, "promote", "users-v2") == 0
        await tables.until(partial(has_weights, {"v1": 50, "v2": 50}))
        assert await rollout(ns, "pause", "users-v2") == 0
        assert "Progressing, paused, step 2, weight 50 %" in capsys.readouterr().out
        assert await rollout(ns, "resume", "users-v2") == 0
        assert "Progressing, step 2, weight 50 %" in capsys.readouterr().out

        aborted_from = len(tables.events)
        assert await rollout(ns, "abort", "users-v2") == 0
        assert "RolledBack, step 2, weight 0 %" in capsys.readouterr().out
        await tables.until(partial(has_weights, {"v1": 100}), after=aborted_from)

        retried_from = len(tables.events)
        assert await rollout(ns, "retry", "users-v2") == 0
        assert "Progressing, step 1, weight 10 %" in capsys.readouterr().out
        await tables.until(partial(has_weights, {"v1": 90, "v2": 10}), after=retried_from)
        assert await rollout(ns, "promote", "users-v2") == 0
        await tables.until(partial(has_weights, {"v1": 50, "v2": 50}), after=retried_from)
        assert await rollout(ns, "promote", "users-v2") == 0
        await tables.until(partial(has_weights, {"v2": 100}))
    status = workloads.get("GatiVersion", "users-v2")["status"]
    assert (status["phase"], status["currentWeight"]) == ("Active", 100)


def test_a_missing_version_is_named_with_the_fix(
    gati_kubeconfig: Path, workloads: Workloads, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollout", "promote", "users-v9", "-n", workloads.namespace]) == 2
    error = capsys.readouterr().err
    assert f"no gativersion/users-v9 in namespace {workloads.namespace}" in error
    assert "kubectl get gv" in error


def test_an_unknown_action_is_refused_before_any_request(gati_kubeconfig: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rollout", "skip", "users-v2"])
    assert exited.value.code == 2


async def test_a_request_on_a_version_without_handler_is_answered(
    stage: Stage,
    gati_kubeconfig: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gati_api, gati_connection, _, workloads = stage
    ns = workloads.namespace
    recorded_version(workloads, "users-v7", "v7", {"phase": "Pending", "handlerPath": "/api/users"})
    async with outcomes(gati_connection) as seen, running_timescape(gati_api, gati_connection):
        assert await rollout(ns, "promote", "users-v7") == 0
        await seen.wait_for(lambda events: any(e.name == "users-v7" for e in events))
    assert "users-v7: Pending, step 1, weight 0 %" in capsys.readouterr().out
    answer = next(e for e in seen.events if e.name == "users-v7")
    assert (answer.action, answer.reason) == ("rollout-action", "ActionNotApplicable")
    assert "GatiHandler 'users-v7'" in answer.message
