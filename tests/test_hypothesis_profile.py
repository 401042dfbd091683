"""The suite's Hypothesis profile is what keeps property tests untimed; without it every
property test is a 200 ms timed test again, which a loaded CI machine fails at random."""

from hypothesis import settings


def test_property_tests_run_without_a_per_example_deadline() -> None:
    assert settings().deadline is None
