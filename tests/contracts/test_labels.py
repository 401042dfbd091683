"""Labels the services write: valid Kubernetes labels, and a selector that never changes."""

from __future__ import annotations

import re

from gati_contracts.fieldtypes import LABEL_VALUE_PATTERN, QUALIFIED_NAME_PATTERN
from gati_contracts.kinds import GATI_HANDLER, GATI_MODULE
from gati_contracts.labels import (
    OWNER_LABEL,
    ROLLOUT_ACTION_ANNOTATION,
    RolloutAction,
    selector_labels,
    selector_string,
    workload_labels,
)


def test_workload_labels_contain_the_selector_and_are_valid_labels() -> None:
    labels = workload_labels(GATI_HANDLER, "orders-v2", "2.0.1")
    assert selector_labels(GATI_HANDLER, "orders-v2").items() <= labels.items()
    for key, value in labels.items():
        assert re.fullmatch(QUALIFIED_NAME_PATTERN, key), key
        assert re.fullmatch(LABEL_VALUE_PATTERN, value), value


def test_selector_does_not_depend_on_the_version() -> None:
    assert selector_labels(GATI_MODULE, "payments") == {
        "gati.dev/kind": "gatimodule",
        OWNER_LABEL: "payments",
    }
    assert workload_labels(GATI_MODULE, "payments", "1") != workload_labels(GATI_MODULE, "payments")


def test_selector_string_is_sorted_and_comma_separated() -> None:
    assert selector_string({"b": "2", "a": "1"}) == "a=1,b=2"
    assert selector_string(selector_labels(GATI_HANDLER, "x")) == (
        "gati.dev/kind=gatihandler,gati.dev/owner=x"
    )


def test_rollout_actions_are_the_cli_verbs() -> None:
    assert ROLLOUT_ACTION_ANNOTATION == "gati.dev/rollout-action"
    assert [a.value for a in RolloutAction] == ["promote", "pause", "resume", "abort", "retry"]
