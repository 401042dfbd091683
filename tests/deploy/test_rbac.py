"""The RBAC checker reads rendered roles and judges recorded calls as the API server does."""

from __future__ import annotations

import pytest

from deploy.rbac import RbacError, Rule, check, parse_rules, request_info, rules_by_service
from deploy.rendering import needs_kubectl, render

SERVICES = ("watcher", "reconciler", "scaler", "timescape")


@pytest.mark.parametrize(
    ("method", "url", "verb", "group", "resource"),
    [
        ("GET", "/apis/gati.dev/v1alpha1/gatihandlers", "list", "gati.dev", "gatihandlers"),
        ("GET", "/apis/apps/v1/deployments?watch=true&rv=1", "watch", "apps", "deployments"),
        # The Python client sends `watch=True`; the server parses booleans as Go's ParseBool.
        ("GET", "/apis/apps/v1/deployments?watch=True", "watch", "apps", "deployments"),
        ("GET", "/api/v1/namespaces/a/configmaps/x", "get", "", "configmaps"),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/a/deployments/d/scale",
            "patch",
            "apps",
            "deployments/scale",
        ),
        (
            "PUT",
            "/apis/gati.dev/v1alpha1/namespaces/a/gativersions/v/status",
            "update",
            "gati.dev",
            "gativersions/status",
        ),
        ("POST", "/apis/events.k8s.io/v1/namespaces/a/events", "create", "events.k8s.io", "events"),
        ("DELETE", "/api/v1/namespaces/a/services/s", "delete", "", "services"),
        ("GET", "/api/v1/namespaces/a/services", "list", "", "services"),
    ],
)
def test_request_info_matches_the_api_server(
    method: str, url: str, verb: str, group: str, resource: str
) -> None:
    info = request_info(method, url)
    assert (info.verb, info.group, info.resource) == (verb, group, resource)


def test_denied_calls_and_unused_rules_are_both_reported() -> None:
    rules = parse_rules(
        {
            "metadata": {"name": "r"},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list", "watch"]}
            ],
        }
    )
    verdict = check(
        rules,
        [
            ("GET", "/apis/apps/v1/deployments"),
            ("DELETE", "/apis/apps/v1/namespaces/a/deployments/d"),
        ],
    )
    assert [r.verb for r in verdict.denied] == ["delete"]
    assert verdict.unused == (Rule("apps", "deployments", "watch"),)
    assert not verdict.exact


@pytest.mark.parametrize(("field", "value"), [("verbs", ["*"]), ("resources", [])])
def test_wildcards_and_empty_fields_are_refused_naming_the_field(
    field: str, value: list[str]
) -> None:
    rule = {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"], field: value}
    with pytest.raises(RbacError, match=rf"gati-x rules\[0\]\.{field}"):
        parse_rules({"metadata": {"name": "gati-x"}, "rules": [rule]})


def test_unknown_paths_are_refused_with_the_path() -> None:
    with pytest.raises(RbacError, match="/healthz"):
        request_info("GET", "/healthz")


@needs_kubectl
def test_rendered_roles_parse_and_the_watcher_needs_only_list_and_watch() -> None:
    rules = rules_by_service(render("production"), SERVICES)
    calls = [
        (method, f"/apis/{path}")
        for path in (
            "gati.dev/v1alpha1/gatihandlers",
            "gati.dev/v1alpha1/gatimodules",
            "gati.dev/v1alpha1/gativersions",
            "apps/v1/deployments",
        )
        for method in ("GET",)
    ]
    watches = [(m, u + "?watch=true") for m, u in calls]
    assert check(rules["watcher"], calls + watches).exact
    assert all(rule.verb in {"list", "watch"} for rule in rules["watcher"])
