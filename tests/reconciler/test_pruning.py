"""must_prune: the list for dropped objects is skipped only where the status and the render
kept from the generation before prove nothing was dropped."""

from __future__ import annotations

from typing import Any

import pytest

from gati_reconciler.pruning import must_prune


def objects(*kinds: str) -> list[dict[str, Any]]:
    return [{"kind": kind, "metadata": {"name": "h"}} for kind in kinds]


BASE = objects("Deployment", "Service", "ConfigMap")
WITH_BUDGET = objects("Deployment", "Service", "ConfigMap", "PodDisruptionBudget")


@pytest.mark.parametrize(
    ("observed", "generation", "reshaped", "retired", "previous", "rendered", "expected"),
    [
        # A first reconcile: nothing of this uid exists but what it applies.
        (None, 1, False, False, None, BASE, False),
        (None, 3, True, True, None, BASE, False),
        # Realized already: only a reshape (retiring, returning, a version change) looks.
        (2, 2, False, False, (2, BASE), BASE, False),
        (2, 2, False, True, (2, BASE), BASE, False),
        (2, 2, True, False, (2, BASE), BASE, True),
        # One generation on, the render before it kept: nothing dropped, nothing to look for.
        (1, 2, False, False, (1, BASE), BASE, False),
        (1, 2, False, False, (1, BASE), WITH_BUDGET, False),
        # ... but its budget is gone from the new render.
        (1, 2, False, False, (1, WITH_BUDGET), BASE, True),
        # Less known: no render kept, one of another generation, a generation skipped (its
        # render may have been applied in part), a retired version.
        (1, 2, False, False, None, BASE, True),
        (1, 2, False, False, (2, BASE), BASE, True),
        (1, 3, False, False, (1, BASE), BASE, True),
        (1, 2, False, True, (1, BASE), BASE, True),
    ],
)
def test_must_prune(
    observed: int | None,
    generation: int,
    reshaped: bool,
    retired: bool,
    previous: tuple[int, list[dict[str, Any]]] | None,
    rendered: list[dict[str, Any]],
    expected: bool,
) -> None:
    assert (
        must_prune(
            observed=observed,
            generation=generation,
            reshaped=reshaped,
            retired=retired,
            previous=previous,
            rendered=rendered,
        )
        is expected
    )
