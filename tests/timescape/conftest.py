"""The reconciler tests' namespace, kubesim with CRDs and real watcher, reused for timescape."""

from __future__ import annotations

from reconciler.conftest import gati_api, gati_kubesim, watcher, workloads

__all__ = ["gati_api", "gati_kubesim", "watcher", "workloads"]
