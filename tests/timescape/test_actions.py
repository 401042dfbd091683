"""The annotation contract of operator actions: each request taken once, bad ones explained."""

from __future__ import annotations

import pytest

from gati_timescape.actions import (
    ACTION_ANNOTATION,
    NONCE_ANNOTATION,
    ActionAnnotationError,
    ActionRequest,
    RolloutAction,
    requested_action,
)


def test_a_request_is_taken_once_per_nonce() -> None:
    annotations = {ACTION_ANNOTATION: "promote", NONCE_ANNOTATION: "n1", "other": "x"}
    assert requested_action(annotations, None) == ActionRequest(RolloutAction.PROMOTE, "n1")
    assert requested_action(annotations, "n1") is None
    assert requested_action({**annotations, NONCE_ANNOTATION: "n2"}, "n1") == ActionRequest(
        RolloutAction.PROMOTE, "n2"
    )
    assert requested_action({"other": "x"}, "n1") is None


def test_unknown_action_names_the_allowed_ones() -> None:
    with pytest.raises(ActionAnnotationError, match="promote, pause, resume") as caught:
        requested_action({ACTION_ANNOTATION: "promotee", NONCE_ANNOTATION: "n3"}, None)
    assert caught.value.nonce == "n3"
    assert requested_action({ACTION_ANNOTATION: "promotee", NONCE_ANNOTATION: "n3"}, "n3") is None


def test_missing_nonce_says_how_to_set_one_and_is_refused_once() -> None:
    annotations = {ACTION_ANNOTATION: "abort"}
    with pytest.raises(ActionAnnotationError, match=NONCE_ANNOTATION) as caught:
        requested_action(annotations, None)
    assert requested_action(annotations, caught.value.nonce) is None
