"""Round trips and wall time of cold CLI operations, counted by the server.

Each operation runs as a fresh ``deeplake-sdk`` process against an existing workspace (the
memory and sessions tables exist and hold files and session logs; one earlier command has
used the workspace, so what the SDK remembers on disk between processes is in place). The
server's request counter is reset before each process and read after it: the figure is the
number of HTTP requests the process sent. The content cache directory is emptied before each
process (a cold cache).

Operations: ``cat FILE``, ``stat`` (``ls -l FILE``), ``ls /dir``, ``grep -r PATTERN /dir``,
``write``, ``append``, ``rm``.

With ``--baseline REV`` the same operations also run on the source of git revision ``REV``
(extracted with ``git archive`` into a temporary directory and put first on ``PYTHONPATH``),
and the wall time of a cold ``cat`` is compared in the same run (runs interleaved, medians).

Usage::

    python benchmarks/cold_ops.py [--files 200] [--repeat 15] [--baseline REV]
        [--latency-ms MS] [--json]

``--latency-ms`` makes the server add that much to every request, like a remote service.

It starts its own embedded server (PostgreSQL included) and stops it at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

OPS: list[tuple[str, list[str]]] = [
    ("cat", ["cat", "/notes/d0/f0.md"]),
    ("stat", ["ls", "-l", "/notes/d0/f1.md"]),
    ("ls /dir", ["ls", "/notes/d1"]),
    ("grep -r", ["grep", "-r", "needle-7", "/notes"]),
    ("write", ["write", "/notes/new.md", "hello"]),
    ("append", ["append", "/notes/d0/f2.md", "more"]),
    ("rm", ["rm", "/notes/d0/f3.md"]),
]


def _seed(srv: Any, workspace: str, files: int) -> None:
    from deeplake_sdk import DeeplakeApi, DeeplakeFs, SessionLog

    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
    with DeeplakeFs(api, cache=False) as fs:
        for i in range(files):
            fs.write_text(f"/notes/d{i % 10}/f{i // 10}.md", f"# file {i}\nneedle-{i}\n" * 5)
    log = SessionLog(api, session_id="s-1", user="ada")
    for i in range(5):
        log.log({"type": "user_message", "content": f"question {i}"})
    log.flush()
    api.close()


def _source_of(rev: str, into: str) -> str:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "deeplake_sdk"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return into


def _run(srv: Any, env: dict[str, str], argv: list[str], src: str | None) -> tuple[int, float, str]:
    cache = env["DEEPLAKE_CACHE_DIR"]
    shutil.rmtree(cache, ignore_errors=True)
    os.makedirs(cache)
    run_env = dict(env)
    if src is not None:
        run_env["PYTHONPATH"] = src
    # ``python -m`` puts the working directory first on sys.path: run from the source to
    # measure (the baseline's directory, or an empty one for the installed package)
    cwd = src or os.path.dirname(cache)
    srv.reset_stats()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "deeplake_sdk.cli", *argv],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed ({proc.returncode}): {proc.stderr}")
    return srv.stats()["requests"], wall, proc.stdout


def main() -> None:
    """Run the measurement and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="files in the workspace")
    parser.add_argument("--repeat", type=int, default=15, help="cold cat runs per source")
    parser.add_argument("--baseline", metavar="REV", help="git revision to compare with")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="latency the server adds to each request"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()

    from deeplake_sdk.server import local

    tmp = tempfile.mkdtemp(prefix="dlcold")
    os.environ["DEEPLAKE_JOURNAL_DIR"] = os.path.join(tmp, "journal_seed")
    try:
        sources: dict[str, str | None] = {"current": None}
        if args.baseline:
            sources["baseline"] = _source_of(args.baseline, tempfile.mkdtemp(dir=tmp))
        with local(faults="none", durable=False, latency_fixed_ms=args.latency_ms) as srv:
            out: dict[str, Any] = {"files": args.files, "latency_ms": args.latency_ms, "ops": {}}
            envs: dict[str, dict[str, str]] = {}
            for name, src in sources.items():
                workspace = f"cold_{name}"
                _seed(srv, workspace, args.files)
                env = dict(os.environ)
                env.pop("PYTHONPATH", None)
                env.update(
                    DEEPLAKE_TOKEN=srv.token,
                    DEEPLAKE_ORG_ID=srv.org,
                    DEEPLAKE_WORKSPACE_ID=workspace,
                    DEEPLAKE_API_URL=srv.url,
                    DEEPLAKE_CACHE_DIR=os.path.join(tmp, f"cache_{name}"),
                    DEEPLAKE_JOURNAL_DIR=os.path.join(tmp, f"journal_{name}"),
                    DEEPLAKE_STATE_DIR=os.path.join(tmp, f"state_{name}"),
                )
                envs[name] = env
                _run(srv, env, ["ls", "/"], src)  # the workspace has been used once
                out["ops"][name] = {op: _run(srv, env, argv, src)[0] for op, argv in OPS}
            walls: dict[str, list[float]] = {name: [] for name in sources}
            for _ in range(args.repeat):
                for name, src in sources.items():
                    walls[name].append(_run(srv, envs[name], OPS[0][1], src)[1])
            out["cat_wall_s"] = {name: statistics.median(w) for name, w in walls.items()}
            if "baseline" in walls:
                out["cat_wall_ratio"] = out["cat_wall_s"]["current"] / out["cat_wall_s"]["baseline"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    names = list(out["ops"])
    print(f"{'operation':<10}" + "".join(f"{n:>10}" for n in names) + "   (requests per process)")
    for op, _ in OPS:
        print(f"{op:<10}" + "".join(f"{out['ops'][n][op]:>10}" for n in names))
    for n in names:
        print(f"cold cat wall time, {n}: {out['cat_wall_s'][n] * 1000:.0f} ms (median)")
    if "cat_wall_ratio" in out:
        print(f"ratio current/baseline: {out['cat_wall_ratio']:.2f}")


if __name__ == "__main__":
    main()
