"""Sample objects shared by the model and CRD tests: minimal ones and ones using every field."""

from __future__ import annotations

from typing import Any


def handler(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiHandler",
        "metadata": {"name": "users-v2", "namespace": "shop"},
        "spec": {"handlerPath": "/api/users", "version": "v2", "image": "ghcr.io/acme/u:2"} | spec,
    }


def module(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiModule",
        "metadata": {"name": "auth", "namespace": "shop"},
        "spec": {"moduleName": "@acme/auth", "image": "ghcr.io/acme/auth:1"} | spec,
    }


def version(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiVersion",
        "metadata": {"name": "users-v2", "namespace": "shop"},
        "spec": {"versionId": "v2", "handlerRef": {"name": "users-v2"}} | spec,
    }


FULL_HANDLER = handler(
    replicas=3,
    port=3000,
    resources={
        "requests": {"cpu": "250m", "memory": "64Mi"},
        "limits": {"cpu": 1, "memory": "1Gi"},
    },
    env={
        "LOG_LEVEL": "debug",
        "DB_PASSWORD": {"valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
    },
    timescape={
        "breaking": True,
        "routingWeight": 20,
        "rollout": {
            "steps": [
                {"weight": 5, "pause": "30s"},
                {"weight": 40},
                {"weight": 100, "pause": "1h30m"},
            ],
            "analysis": {
                "interval": "15s",
                "minReadyRatio": 0.5,
                "minSuccessRate": 0.95,
                "maxLatencyP99Ms": 250.0,
                "failureThreshold": 3,
            },
        },
    },
    scaling={
        "mode": "events",
        "minReplicas": 0,
        "maxReplicas": 20,
        "targetRequestsPerReplica": 50.0,
        "scaleToZero": True,
        "idleSeconds": 120,
        "scaleDownStabilizationSeconds": 60,
    },
)
FULL_MODULE = module(
    moduleType="wasm",
    runtime="wasmtime",
    capabilities=["network-egress", "net-bind-service"],
    env={"MODE": "strict"},
)
FULL_VERSION = version(
    breaking=True,
    routingWeight=0,
    transformers=["users-v1-to-v2"],
    deploymentName="users-v2",
    serviceName="users-v2",
    rollout={"steps": [{"weight": 100}]},
    decommission={"graceSeconds": 60, "idleSamples": 3, "action": "scaleToZero"},
)
FULL_VERSION["status"] = {
    "phase": "Progressing",
    "handlerPath": "/api/users",
    "currentWeight": 10,
    "currentStep": 0,
    "stepStartedAt": "2026-01-02T03:04:05Z",
    "trafficCount": 12,
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "RolloutInProgress",
            "message": "step 1 of 3",
            "lastTransitionTime": "2026-01-02T03:04:05Z",
            "observedGeneration": 2,
        }
    ],
    "observedGeneration": 2,
}
