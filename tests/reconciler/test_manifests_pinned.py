"""Renders of the fullest samples, pinned byte for byte (key order included).

Apply bodies, config hashes and replay diffs are compared across releases: a render that merely
reads differently would re-apply every object, or roll every pod, on upgrade. Speed work on the
parse and render paths must leave this file's expectations untouched; a deliberate change of a
manifest regenerates `pinned_renders.json` and says why in its commit.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from contracts.samples import FULL_HANDLER, FULL_MODULE
from gati_contracts.objects import parse_object
from gati_contracts.version import GatiVersion
from gati_reconciler.manifests import render

PINNED = Path(__file__).with_name("pinned_renders.json")
UID = "0f4c7a56-1111-4c2e-9d7e-000000000001"


def rendered(raw: dict[str, Any]) -> list[dict[str, Any]]:
    raw = copy.deepcopy(raw)
    raw["metadata"]["uid"] = UID
    resource = parse_object(raw)
    assert not isinstance(resource, GatiVersion)
    return render(resource)


def test_the_fullest_handler_and_module_render_as_pinned() -> None:
    expected = PINNED.read_text()
    actual = json.dumps([rendered(FULL_HANDLER), rendered(FULL_MODULE)], indent=1)
    assert actual == expected


def _containers_of(value: Any) -> list[int]:
    """The ids of every dict and list in `value`, `value` included."""
    if isinstance(value, dict):
        return [id(value), *(i for item in value.values() for i in _containers_of(item))]
    if isinstance(value, list):
        return [id(value), *(i for item in value for i in _containers_of(item))]
    return []


def test_no_value_sits_twice_in_one_object() -> None:
    """Renders share parts between objects and between renders, never within one object: the
    gitops target's YAML would show such a part as an anchor and an alias."""
    for raw in (FULL_HANDLER, FULL_MODULE):
        for _ in range(2):  # the second render reuses the shared parts of the first
            for obj in rendered(raw):
                ids = _containers_of(obj)
                assert len(ids) == len(set(ids)), obj["kind"]
                assert "&id" not in yaml.safe_dump(obj, sort_keys=True)
