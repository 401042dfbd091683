"""Which Kubernetes cluster a service talks to, found the way every Kubernetes tool finds it.

Order, as controller-runtime and kubectl use it: an explicit kubeconfig (`KUBECONFIG`, a
`:`-separated list), then the in-cluster service account when running in a pod, then
`~/.kube/config`. `KUBECONFIG` is read at call time: the `kubernetes` package reads it once at
import, which would make the choice depend on import order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kubernetes import client, config


class KubeConfigError(RuntimeError):
    """No usable cluster configuration; the message says which sources were tried."""


def kube_configuration(
    context: str | None = None, environ: Mapping[str, str] | None = None
) -> client.Configuration:
    env = os.environ if environ is None else environ
    configuration = client.Configuration()
    explicit = env.get("KUBECONFIG", "")
    if explicit:
        config.load_kube_config(
            config_file=explicit, context=context, client_configuration=configuration
        )
        return configuration
    if env.get("KUBERNETES_SERVICE_HOST") and context is None:
        config.load_incluster_config(client_configuration=configuration)
        return configuration
    default = Path(env.get("HOME", "~")).expanduser() / ".kube" / "config"
    if default.is_file():
        config.load_kube_config(
            config_file=str(default), context=context, client_configuration=configuration
        )
        return configuration
    raise KubeConfigError(
        "no Kubernetes configuration: set KUBECONFIG, run inside a pod with a service account, "
        f"or create {default}"
    )
