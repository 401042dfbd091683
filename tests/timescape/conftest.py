"""The reconciler tests' namespace, kubesim with CRDs and real watcher, reused for timescape,
and the `stage` the end-to-end timescape tests take them as."""

from __future__ import annotations

from fixtures.stage import stage
from reconciler.conftest import gati_api, gati_kubesim, watcher, workloads

__all__ = ["gati_api", "gati_kubesim", "stage", "watcher", "workloads"]
