"""The `autoscaling/v2` HorizontalPodAutoscaler of a handler in mode `hpa`, as an apply body.

A pure function of the handler: every replica renders byte-identical JSON, so re-applying an
unchanged handler is a no-op under server-side apply, and every field set is one the scaler's
field manager (`gati-operator-scaler`) claims (the HPA controller then owns the Deployment's
replicas).

The scale-up behaviour is written out although it equals the HPA's default, so it matches the
policy of mode `events` by construction (the same constants) and survives a change of defaults.
A utilization target needs a request of that resource on the pod (the limit stands in when only
a limit is given, as Kubernetes defaults the request to it); without one the HPA controller
could never compute a utilization, so rendering refuses with the field to set.
"""

from __future__ import annotations

from typing import Any, Final

from gati_contracts.handler import GatiHandler
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER
from gati_contracts.labels import workload_labels
from gati_contracts.ownership import controller_reference
from gati_contracts.problems import FieldProblem
from gati_contracts.scaling import ScalingMode
from gati_scaler.decision import SCALE_UP_PERCENT, SCALE_UP_PERIOD_SECONDS, SCALE_UP_PODS

API_VERSION: Final = "autoscaling/v2"
KIND: Final = "HorizontalPodAutoscaler"
DEFAULT_CPU_UTILIZATION: Final = 80
"""The HPA's own default when it has no metric: the model documents it for mode `hpa`."""


class HpaError(ValueError):
    """The handler cannot have an HPA as written; `problem` names the field and the fix."""

    def __init__(self, problem: FieldProblem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def render_hpa(handler: GatiHandler, deployment_name: str) -> dict[str, Any]:
    """The HPA named after, and scaling, the handler's Deployment `deployment_name`.

    Raises `HpaError` when the handler is not in mode `hpa`, was not read from the API server
    (no namespace or uid to own the HPA by), or lacks a request a utilization target needs.
    """
    spec, metadata = handler.spec, handler.metadata
    scaling = spec.scaling
    if scaling.mode is not ScalingMode.HPA:
        raise HpaError(
            FieldProblem("spec.scaling.mode", f"is {scaling.mode.value}; an HPA is for mode hpa")
        )
    if metadata.namespace is None or metadata.uid is None:
        missing = "metadata.namespace" if metadata.namespace is None else "metadata.uid"
        raise HpaError(
            FieldProblem(missing, "is required; render the handler as the API server returned it")
        )
    cpu, memory = scaling.target_cpu_utilization, scaling.target_memory_utilization
    if cpu is None and memory is None:
        cpu = DEFAULT_CPU_UTILIZATION
    targets = [(name, value) for name, value in (("cpu", cpu), ("memory", memory)) if value]
    resources = spec.resources
    for name, _ in targets:
        if name not in resources.requests and name not in resources.limits:
            example = "100m" if name == "cpu" else "128Mi"
            raise HpaError(
                FieldProblem(
                    f"spec.resources.requests.{name}",
                    f"is required for a {name} utilization target (the HPA measures usage "
                    f"against it); set one such as {example}",
                )
            )
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": deployment_name,
            "namespace": metadata.namespace,
            "labels": workload_labels(GATI_HANDLER, metadata.name, spec.version),
            "ownerReferences": [controller_reference(handler)],
        },
        "spec": {
            "scaleTargetRef": {
                "apiVersion": DEPLOYMENT.api_version,
                "kind": DEPLOYMENT.kind,
                "name": deployment_name,
            },
            # An HPA cannot hold zero replicas; scale to zero is mode events' business.
            "minReplicas": max(1, scaling.min_replicas),
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": name,
                        "target": {"type": "Utilization", "averageUtilization": value},
                    },
                }
                for name, value in targets
            ],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [
                        {
                            "type": "Pods",
                            "value": SCALE_UP_PODS,
                            "periodSeconds": SCALE_UP_PERIOD_SECONDS,
                        },
                        {
                            "type": "Percent",
                            "value": SCALE_UP_PERCENT,
                            "periodSeconds": SCALE_UP_PERIOD_SECONDS,
                        },
                    ],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": scaling.scale_down_stabilization_seconds,
                },
            },
        },
    }
