"""Objects the kubesim tests create: a CRD with a schema, printer columns and subresources."""

from __future__ import annotations

from typing import Any

GROUP = "gati.dev"
VERSION = "v1alpha1"
PLURAL = "gatihandlers"


def handler_crd() -> dict[str, Any]:
    """A GatiHandler-like CRD written for these tests (not the generated one in deploy/)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": PLURAL,
                "singular": "gatihandler",
                "kind": "GatiHandler",
                "shortNames": ["gh"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Path", "type": "string", "jsonPath": ".spec.handlerPath"},
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["handlerPath"],
                                    "properties": {
                                        "handlerPath": {"type": "string"},
                                        "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {
                                        "phase": {"type": "string"},
                                        "replicas": {"type": "integer"},
                                    },
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def handler(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GatiHandler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"handlerPath": f"/{name}", **spec},
    }


def deployment(
    name: str, image: str = "nginx:1.27", replicas: int = 2, **annotations: str
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": dict(annotations)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }
