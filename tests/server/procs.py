"""Process helpers of the server tests: a process tree, waiting for processes to be gone."""

from __future__ import annotations

import time

import psutil


def gone(pids, timeout=60.0):
    """Wait until every pid has exited (zombies count as exited); returns the survivors."""
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    alive.discard(pid)
            except psutil.NoSuchProcess:
                alive.discard(pid)
        if alive:
            time.sleep(0.02)  # polling interval of the exit check
    return alive


def tree(pid):
    """``pid`` and all its descendants."""
    proc = psutil.Process(pid)
    return {pid} | {c.pid for c in proc.children(recursive=True)}
