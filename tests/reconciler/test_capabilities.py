"""Each module capability grants exactly what its row in docs/capabilities.md says."""

from __future__ import annotations

from pathlib import Path

import pytest

from gati_contracts.module import ModuleCapability
from gati_reconciler.capabilities import GRANTS, Grants, grants_for

DOC = Path(__file__).parents[2] / "docs" / "capabilities.md"


@pytest.mark.parametrize("capability", list(ModuleCapability))
def test_every_capability_has_a_grant_and_a_documented_row(capability: ModuleCapability) -> None:
    assert GRANTS[capability] != Grants()
    assert f"| `{capability.value}` |" in DOC.read_text()


def test_no_capability_grants_nothing() -> None:
    assert grants_for([]) == Grants()


def test_grants_combine() -> None:
    combined = grants_for(list(ModuleCapability))
    assert combined == Grants(
        open_egress=True,
        open_ingress=True,
        writable_root=True,
        linux_capabilities=("NET_BIND_SERVICE",),
    )
    assert grants_for([ModuleCapability.NETWORK_EGRESS]) == Grants(open_egress=True)
