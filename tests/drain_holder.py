"""A process that holds a workspace journal's drain lock, for tests of what waits behind it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROC = str(Path(__file__).with_name("journal_proc.py"))


@contextmanager
def drain_held(journal: Path, srv: Any, workspace: str) -> Iterator[subprocess.Popen]:
    """Hold the drain lock of ``workspace``'s journal under ``journal`` until the block ends.

    The holder exits when the block ends (its stdin closed), releasing the lock; the block's
    own failure is not hidden by the holder's.
    """
    where = ["--origin", srv.url, "--org", srv.org, "--ws", workspace]
    holder = subprocess.Popen(
        [sys.executable, PROC, "hold-drain", str(journal), *where],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert json.loads(holder.stdout.readline()) == {"locked": True}
        yield holder
        holder.stdin.close()
        assert holder.wait(60) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(60)
        holder.stdout.close()
