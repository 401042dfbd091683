"""`kubectl apply -k deploy/overlays/dev` against kubesim, over HTTP as against a cluster.

kubesim does not yet serve every kind the install needs; those gaps are listed here exactly, so
this test fails both when something else is refused and when kubesim closes a gap (then shrink
the list). kubesim belongs to another area and is not patched from here.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from deploy.rendering import DEPLOY, KUBECTL, needs_kubectl, render
from gati_kubesim.server import ThreadedKubeSim

# Kinds kubesim has no resource mapping for (kubectl: "no matches for kind"; none left).
UNSERVED_KINDS: set[str] = set()
# Objects kubesim refuses as invalid although a real API server accepts them (none left).
REJECTED: set[tuple[str, str]] = set()


def _kubectl(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "--server", url, *args], capture_output=True, text=True, timeout=120
    )


@needs_kubectl
def test_dev_overlay_is_accepted_except_known_kubesim_gaps() -> None:
    with ThreadedKubeSim() as sim:
        crds = _kubectl(sim.url, "apply", "--server-side", "-f", str(DEPLOY / "crds"))
        assert crds.returncode == 0, crds.stderr
        applied = _kubectl(
            sim.url, "apply", "--server-side", "-k", str(DEPLOY / "overlays" / "dev")
        )
    unserved = set(re.findall(r'no matches for kind "(\w+)"', applied.stderr))
    rejected = set(re.findall(r'(\w+) "([a-z0-9-]+?)-[a-z0-9]{10}" is invalid', applied.stderr))
    assert unserved == UNSERVED_KINDS, applied.stderr
    assert rejected == REJECTED, applied.stderr
    done = {line.split(" ")[0] for line in applied.stdout.splitlines()}
    for doc in render("dev"):
        if doc["kind"] in UNSERVED_KINDS or (doc["kind"], _base_name(doc)) in REJECTED:
            continue
        name = doc["metadata"]["name"]
        assert any(entry.endswith(f"/{name}") for entry in done), f"{doc['kind']}/{name}"


def _base_name(doc: dict[str, object]) -> str:
    name = str(doc["metadata"]["name"])  # type: ignore[index]
    return re.sub(r"-[a-z0-9]{10}$", "", name) if doc["kind"] in {"Secret", "ConfigMap"} else name


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
