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


def test_objects_of_one_render_share_no_selector() -> None:
    """The selector labels are computed once per render; each object still gets its own dict,
    so a caller editing one object's selector edits no other."""
    objects = {obj["kind"]: obj for obj in rendered(FULL_MODULE)}
    selectors = [
        objects["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"],
        objects["Service"]["spec"]["selector"],
        objects["Deployment"]["spec"]["selector"]["matchLabels"],
    ]
    assert len({id(selector) for selector in selectors}) == len(selectors)
