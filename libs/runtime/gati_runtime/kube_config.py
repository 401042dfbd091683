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

import urllib3
from kubernetes import client, config

# Transient answers (5xx, 429, a refused connection) are retried at once, a few times with a
# short backoff honouring Retry-After, for the verbs that are safe to repeat: a level-triggered
# pass of a dozen calls would otherwise fail whole, and wait out the consumer's backoff, on one
# bad answer in ten. POST stays out: a create that landed and is sent again is a 409 to explain.
# A read timeout is not retried either: the request may be in effect, the caller decides.
API_RETRIES = urllib3.Retry(
    total=3,
    connect=3,
    read=0,
    status=3,
    other=0,
    status_forcelist=(429, 500, 502, 503, 504),
    allowed_methods=frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}),
    backoff_factor=0.05,
    backoff_max=1.0,
    respect_retry_after_header=True,
    raise_on_status=False,
)


class KubeConfigError(RuntimeError):
    """No usable cluster configuration; the message says which sources were tried."""


def kube_configuration(
    context: str | None = None, environ: Mapping[str, str] | None = None
) -> client.Configuration:
    env = os.environ if environ is None else environ
    configuration = client.Configuration()
    configuration.retries = API_RETRIES
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
