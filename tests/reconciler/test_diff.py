"""Diffs a dry run prints: only real differences, named the way kubectl users read paths."""

from __future__ import annotations

import copy
from typing import Any

from contracts.samples import handler
from gati_contracts.handler import GatiHandler
from gati_reconciler.diff import ABSENT, Change, object_changes, rendered_changes
from gati_reconciler.manifests import CONFIG_HASH_ANNOTATION, render

CONTAINER = "spec.template.spec.containers[name=handler]"


def rendered_deployment(**spec: Any) -> dict[str, Any]:
    raw = handler(**spec)
    raw["metadata"]["uid"] = "uid-1"
    objects = render(GatiHandler.model_validate(raw))
    return next(obj for obj in objects if obj["kind"] == "Deployment")


def as_live(obj: dict[str, Any]) -> dict[str, Any]:
    """What the server returns: server metadata, status and defaults added."""
    live = copy.deepcopy(obj)
    live["metadata"] |= {"resourceVersion": "42", "uid": "x", "generation": 3, "managedFields": []}
    live["status"] = {"readyReplicas": 1}
    container = live["spec"]["template"]["spec"]["containers"][0]
    container |= {"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/x"}
    live["spec"]["revisionHistoryLimit"] = 10
    return live


def test_an_unchanged_render_shows_no_changes_despite_server_additions() -> None:
    deployment = rendered_deployment(resources={"limits": {"cpu": "1000m"}})
    live = as_live(deployment)
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "1"
    assert rendered_changes(live, deployment) == []


def test_changes_are_named_by_path_and_list_item_name() -> None:
    live = as_live(rendered_deployment(replicas=2, image="ghcr.io/acme/u:1"))
    wanted = rendered_deployment(replicas=3, image="ghcr.io/acme/u:2", env={"NEW": "1"})
    changes = {change.path: change for change in rendered_changes(live, wanted)}
    assert changes["spec.replicas"] == Change("spec.replicas", 2, 3)
    assert changes[f"{CONTAINER}.image"].after == "ghcr.io/acme/u:2"
    assert changes[f"{CONTAINER}.env"].before is ABSENT
    assert str(changes["spec.replicas"]) == "~ spec.replicas: 2 -> 3"
    assert str(changes[f"{CONTAINER}.env"]).startswith(f"+ {CONTAINER}.env: [")


def test_a_new_object_is_one_addition() -> None:
    deployment = rendered_deployment()
    [change] = rendered_changes(None, deployment)
    assert change.path == ""
    assert change.before is ABSENT


def test_object_changes_show_removals_and_ignore_status_and_server_metadata() -> None:
    before = as_live(rendered_deployment(env={"KEEP": "1", "DROP": "2"}))
    after = as_live(rendered_deployment(env={"KEEP": "1"}))
    after["status"] = {"readyReplicas": 0}
    after["metadata"]["resourceVersion"] = "43"
    hash_change, change = object_changes(before, after)
    assert hash_change.path == f"spec.template.metadata.annotations.{CONFIG_HASH_ANNOTATION}"
    assert change.path == f"{CONTAINER}.env[name=DROP]"
    assert change.after is ABSENT
    assert str(change).startswith(f"- {CONTAINER}.env[name=DROP]: ")
    [intent] = rendered_changes(before, rendered_deployment(env={"KEEP": "1"}))
    assert intent.path == hash_change.path, "a render cannot see the removal, only the server can"


def test_long_values_are_shortened() -> None:
    change = Change("data.BIG", "x" * 500, ABSENT)
    assert len(str(change)) < 150


def test_values_are_shown_as_json_with_sorted_keys_and_text_as_written() -> None:
    # Replays compare these lines across releases: the form must not drift.
    change = Change("data", {"b": [1, None], "a": 'grüß "x"\n'}, ABSENT)
    assert str(change) == '- data: {"a": "grüß \\"x\\"\\n", "b": [1, null]}'
    assert str(Change("spec.paused", ABSENT, True)) == "+ spec.paused: true"
    assert str(Change("spec.port", 8080, 8081.5)) == "~ spec.port: 8080 -> 8081.5"
