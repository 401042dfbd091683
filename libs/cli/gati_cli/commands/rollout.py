"""`gati-operator rollout ACTION NAME`: promote, pause, resume, abort or retry a rollout.

The command only writes the two annotations timescape reads (`gati_timescape.actions`): the
action and a nonce never used before. So `kubectl annotate` does exactly the same, the request
lives in the cluster rather than in this process, and timescape replicas take it once. With
`--wait` it then watches the GatiVersion until timescape records the nonce in
`status.lastRolloutAction`, and prints where the rollout stands.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any

from gati_timescape.actions import RolloutAction

EXIT_TAKEN = 0
EXIT_NOT_TAKEN = 1
EXIT_ERROR = 2
MERGE_PATCH = "application/merge-patch+json"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rollout",
        help="promote, pause, resume, abort or retry the rollout of a GatiVersion",
        description="Annotate a GatiVersion with gati.dev/rollout-action and a fresh "
        "gati.dev/rollout-action-nonce, as `kubectl annotate` can; timescape takes the request "
        "once. Exit 0: requested (and taken, with --wait), 1: not taken within --wait, "
        "2: could not request. The cluster comes from KUBECONFIG or --kube-context.",
    )
    parser.add_argument(
        "action",
        choices=[action.value for action in RolloutAction],
        help="promote ends the current step's pause; pause holds the step; resume lifts a "
        "pause; abort rolls back; retry starts a rolled-back rollout again",
    )
    parser.add_argument("name", help="the GatiVersion, as `kubectl get gv` lists it")
    parser.add_argument("-n", "--namespace", default="default", help="the GatiVersion's namespace")
    parser.add_argument(
        "--kube-context", default=None, metavar="CONTEXT", help="kubeconfig context to use"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for timescape to take the request, then print the rollout",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from gati_runtime.kube_config import KubeConfigError, kube_configuration

    nonce = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
    where = f"gativersion/{args.name} in namespace {args.namespace}"
    try:
        with client.ApiClient(kube_configuration(args.kube_context)) as api:
            custom = client.CustomObjectsApi(api)
            written = _annotate(custom, args.namespace, args.name, args.action, nonce)
            print(f"{where}: {args.action} requested (nonce {nonce})")
            if args.wait <= 0:
                return EXIT_TAKEN
            taken = _wait_until_taken(custom, written, nonce, args.wait)
    except KubeConfigError as error:
        print(f"gati-operator rollout: {error}", file=sys.stderr)
        return EXIT_ERROR
    except ApiException as error:
        if error.status == 404:
            print(
                f"gati-operator rollout: no {where}; list them with "
                f"`kubectl get gv -n {args.namespace}` or pass -n NAMESPACE",
                file=sys.stderr,
            )
        else:
            print(f"gati-operator rollout: API {error.status}: {error.reason}", file=sys.stderr)
        return EXIT_ERROR
    if taken is None:
        print(
            f"gati-operator rollout: timescape did not take the request within {args.wait:g}s; "
            "is `gati-operator run timescape` running? The annotation stays and is taken later.",
            file=sys.stderr,
        )
        return EXIT_NOT_TAKEN
    print(_describe(taken))
    return EXIT_TAKEN


def _annotate(custom: Any, namespace: str, name: str, action: str, nonce: str) -> dict[str, Any]:
    from gati_contracts.kinds import GATI_VERSION, GROUP, VERSION
    from gati_timescape.actions import ACTION_ANNOTATION, NONCE_ANNOTATION

    body = {"metadata": {"annotations": {ACTION_ANNOTATION: action, NONCE_ANNOTATION: nonce}}}
    written: dict[str, Any] = custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, GATI_VERSION.plural, name, body, _content_type=MERGE_PATCH
    )
    return written


def _wait_until_taken(
    custom: Any, written: dict[str, Any], nonce: str, seconds: float
) -> dict[str, Any] | None:
    """The version once its status names `nonce`, watched from the annotation's write on;
    None when `seconds` pass first."""
    from kubernetes import watch

    from gati_contracts.kinds import GATI_VERSION, GROUP, VERSION

    metadata = written["metadata"]
    deadline = time.monotonic() + seconds
    version = metadata["resourceVersion"]
    while (left := deadline - time.monotonic()) > 0:
        stream = watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            metadata["namespace"],
            GATI_VERSION.plural,
            field_selector=f"metadata.name={metadata['name']}",
            resource_version=version,
            timeout_seconds=max(int(left), 1),
        )
        for event in stream:
            obj: dict[str, Any] = event["object"]
            if event["type"] == "ERROR":  # history compacted (410): go on from a fresh read
                obj = custom.get_namespaced_custom_object(
                    GROUP, VERSION, metadata["namespace"], GATI_VERSION.plural, metadata["name"]
                )
            version = obj["metadata"]["resourceVersion"]
            if (obj.get("status") or {}).get("lastRolloutAction") == nonce:
                return obj
            if event["type"] == "ERROR" or time.monotonic() >= deadline:
                break
    return None


def _describe(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    held = ", paused" if status.get("paused") else ""
    return (
        f"gativersion/{obj['metadata']['name']}: {status.get('phase', 'Pending')}{held}, "
        f"step {status.get('currentStep', 0) + 1}, weight {status.get('currentWeight', 0)} %"
    )
