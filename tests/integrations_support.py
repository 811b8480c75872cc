"""Helpers of the integration tests: run an example of examples/integrations/ on the server."""

from __future__ import annotations

from test_examples import env_for as service_env
from test_examples import run_example as _run_example

__all__ = ["run_example", "service_env"]


def run_example(name: str, env: dict[str, str]) -> str:
    """Run ``examples/integrations/<name>``; assert it succeeds and ends with ``done``."""
    return _run_example(f"integrations/{name}", env)
