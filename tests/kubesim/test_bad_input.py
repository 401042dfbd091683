"""Bad requests get a Status naming the problem and never take the server down."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from gati_kubesim.server import ThreadedKubeSim

CM = "/api/v1/namespaces/default/configmaps"


@pytest.mark.parametrize(
    ("method", "path", "ctype", "body", "code", "needle"),
    [
        ("POST", CM, "application/json", b"{not json", 400, "not valid JSON"),
        ("POST", CM, "application/json", b"[1, 2]", 400, "must be a JSON object"),
        (
            "POST",
            CM,
            "application/json",
            b'{"kind": "Secret", "metadata": {"name": "x"}}',
            400,
            "does not match",
        ),
        (
            "POST",
            CM,
            "application/json",
            b'{"metadata": {"name": "x", "labels": {"a": 1}}}',
            422,
            "metadata.labels",
        ),
        ("POST", CM, "application/json", b'{"metadata": {}}', 422, "name or generateName"),
        ("POST", CM, "application/x-yaml", b"metadata: {name: x}", 415, "unknown format"),
        ("POST", CM, "application/vnd.kubernetes.protobuf", b"garbage", 415, "magic"),
        (
            "PUT",
            f"{CM}/x",
            "application/json",
            b'{"metadata": {"name": "y"}}',
            400,
            "does not match the name",
        ),
        ("PATCH", f"{CM}/nope", "application/merge-patch+json", b"{}", 404, "not found"),
        ("PATCH", f"{CM}/nope", "application/apply-patch+yaml", b"a: [", 400, "fieldManager"),
        (
            "DELETE",
            f"{CM}/nope",
            "application/json",
            b'{"propagationPolicy": "Sideways"}',
            400,
            "propagationPolicy",
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/x/logs",
            "",
            b"",
            404,
            "could not find",
        ),
        ("POST", "/kubesim/faults", "application/json", b'{"code": "x"}', 400, "fault rule"),
    ],
)
def test_bad_requests_get_a_status_and_the_server_keeps_serving(
    kubesim_server: ThreadedKubeSim,
    method: str,
    path: str,
    ctype: str,
    body: bytes,
    code: int,
    needle: str,
) -> None:
    request = urllib.request.Request(
        kubesim_server.url + path,
        data=body or None,
        method=method,
        headers={"Content-Type": ctype} if ctype else {},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    status = json.loads(err.value.read())
    assert (err.value.code, status["kind"], status["code"]) == (code, "Status", code)
    assert needle in status["message"]
    with urllib.request.urlopen(f"{kubesim_server.url}/readyz", timeout=5) as ok:
        assert ok.status == 200
