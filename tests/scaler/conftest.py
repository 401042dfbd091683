"""The reconciler tests' kubesim with CRDs, namespace and real watcher, reused for the scaler."""

from __future__ import annotations

from reconciler.conftest import gati_api, gati_kubesim, watcher, workloads

__all__ = ["gati_api", "gati_kubesim", "watcher", "workloads"]
