"""Scaler tuning from GATI_SCALER_* variables, and the status record's round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gati_contracts.scaling import ScalingRecord
from gati_scaler.decision import decide
from gati_scaler.options import ScalerOptions
from gati_scaler.plan import Holding, seed
from scaler.traffic import at, events, steady, window_of


def test_defaults_and_overrides() -> None:
    assert ScalerOptions.from_env({}) == ScalerOptions()
    options = ScalerOptions.from_env({"GATI_SCALER_TICK_SECONDS": "0.5", "OTHER": "x"})
    assert options.tick_seconds == 0.5


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"GATI_SCALER_LEASE_SECONDS": "soon"}, "GATI_SCALER_LEASE_SECONDS='soon' is not a number"),
        ({"GATI_SCALER_WINDOW_SECONDS": "0"}, "GATI_SCALER_WINDOW_SECONDS must be a positive"),
        ({"GATI_SCALER_RESYNC_SECONDS": "nan"}, "GATI_SCALER_RESYNC_SECONDS must be a positive"),
        (
            {"GATI_SCALER_LEASE_SECONDS": "2", "GATI_SCALER_TICK_SECONDS": "1"},
            "must be at least three ticks",
        ),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScalerOptions.from_env(environ)


def test_a_decision_is_a_valid_status_record_and_seeds_a_successor() -> None:
    """What the service writes to status.lastScaling validates against the CRD's model, and a
    successor reading it back counts that write against the scale-up policy."""
    window = window_of(steady(0, 60, 50))
    decision = decide(events(), 1, window, at(60))
    assert decision.changed
    record = ScalingRecord.from_wire(decision.to_json())
    written = decision.to_json()
    # Nulls in a merge patch remove the field: absent and null are the same record.
    written["inputs"] = {k: v for k, v in written["inputs"].items() if v is not None}
    assert record.to_wire() == written
    assert seed(record) == Holding(applied=(decision,))
    steady_record = record.model_copy(update={"current_replicas": record.desired_replicas})
    assert seed(steady_record) == Holding()
    assert seed(None) == Holding()
    assert record.decided_at == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
