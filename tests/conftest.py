"""Shared fixtures: a real registry on loopback and real servind processes."""

pytest_plugins = ["tests.support.registry", "tests.support.servind"]
