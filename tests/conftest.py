"""Fixtures shared by the whole suite live in `tests/fixtures/`, one module per real component.

Property tests run without Hypothesis's per-example deadline: it is a timed test, and on a
shared 2-core machine an example that takes 200 ms says nothing about the code (speed targets
live in bench/)."""

from hypothesis import settings

settings.register_profile("gati", deadline=None)
settings.load_profile("gati")

pytest_plugins = [
    "fixtures.nats_server",
    "fixtures.kubesim_server",
]
