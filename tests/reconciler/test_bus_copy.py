"""withheld: a bus copy with a masked field a reconcile reads is told from a usable one."""

from __future__ import annotations

from typing import Any

from gati_reconciler.bus_copy import withheld
from gati_runtime.redaction import LAST_APPLIED, Redaction


def obj(**annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiHandler",
        "metadata": {"name": "h", "uid": "u", "annotations": annotations},
        "spec": {"image": "a:1", "env": {"TOKEN": "s3cret"}},
        "status": {"phase": "Running"},
    }


def test_the_default_mask_of_the_last_applied_annotation_leaves_the_copy_usable() -> None:
    copy = Redaction.default().apply(
        obj(**{"kubectl.kubernetes.io/last-applied-configuration": "{...}"})
    )
    assert "s3cret" in str(copy)
    assert "{...}" not in str(copy)
    assert not withheld(copy)
    assert not withheld(obj())


def test_a_masked_field_the_render_reads_makes_the_copy_unusable() -> None:
    redaction = Redaction.parse(f"{LAST_APPLIED},spec.env[*]")
    copy = redaction.apply(obj(**{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}))
    assert "s3cret" not in str(copy)
    assert withheld(copy)
    assert withheld(Redaction.parse("status.phase").apply(obj()))
