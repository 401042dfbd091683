"""Benchmarks: `make bench` runs them; they print JSON and a table and are not tests."""
