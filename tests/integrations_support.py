"""Helpers of the integration tests: run an example of examples/integrations/ on the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_examples import isolated_env
from test_examples import run_example as _run_example


def service_env(srv: Any, workspace: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a process using ``srv`` and ``workspace``, isolated in ``tmp_path``."""
    env = isolated_env(tmp_path)
    env.update(
        DEEPLAKE_API_URL=srv.url,
        DEEPLAKE_TOKEN=srv.token,
        DEEPLAKE_ORG_ID=srv.org,
        DEEPLAKE_WORKSPACE_ID=workspace,
    )
    return env


def run_example(name: str, env: dict[str, str]) -> str:
    """Run ``examples/integrations/<name>``; assert it succeeds and ends with ``done``."""
    return _run_example(f"integrations/{name}", env)
