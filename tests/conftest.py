"""Fixtures shared by the whole suite live in `tests/fixtures/`, one module per real component."""

pytest_plugins = [
    "fixtures.nats_server",
    "fixtures.kubesim_server",
]
