"""Bad input on the command line: one line on stderr, exit status 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "args",
    [
        [b"ls", b"/", b"--table", b'memory"--'],
        [b"ls", b"/\xff", b"--table", b"m\xff"],
        [b"grep", b"(a+)+$", b"/"],
    ],
    ids=["quoted-table", "non-utf8", "exponential-regex"],
)
def test_bad_input_is_one_line_and_exit_2(srv, workspace, args):
    proc = subprocess.run(
        [sys.executable.encode(), b"-m", b"deeplake_sdk.cli", *args],
        capture_output=True,
        timeout=120,
        env={
            **os.environ,
            "DEEPLAKE_API_URL": srv.url,
            "DEEPLAKE_TOKEN": srv.token,
            "DEEPLAKE_ORG_ID": srv.org,
            "DEEPLAKE_WORKSPACE_ID": workspace,
        },
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.decode(errors="replace").strip().splitlines()
    assert line.startswith("deeplake-sdk: error: ") and "Traceback" not in line
    assert "again" not in line  # running it again cannot help
