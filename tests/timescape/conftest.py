"""The reconciler tests' namespace, kubesim with CRDs and real watcher, reused for timescape,
and the `stage` the end-to-end timescape tests take them as."""

from __future__ import annotations

from fixtures.service_context import service_context
from fixtures.stage import stage
from reconciler.conftest import gati_api, gati_kubesim, watcher, workloads

__all__ = ["gati_api", "gati_kubesim", "service_context", "stage", "watcher", "workloads"]
