"""One table of the capacity matrix (benchmarks/capacity_matrix.sh) for the docs.

Reads the matrix runs under a directory and writes ``<dir>/summary.rst`` (a list table) and
``<dir>/summary.md``. A directory holding ``run*/`` subdirectories (one matrix run each) is
summarised point by point over the runs: the median of each figure, the range of the goodput,
and the worst of completed sessions, visible errors and lost/duplicated writes. A directory
holding one run (``<dir>/*/results.json``) is summarised as it is.

Usage::

    python benchmarks/capacity_summary.py [docs/bench/defaults] [title]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from deeplake_sdk.bench.metrics import cpu_per_request_ms

TITLE = "SDK defaults against several capacities (medians over the runs)"
HEADER = (
    "Set-up",
    "Sessions",
    "Mode",
    "Runs",
    "Completed (worst)",
    "Visible errors (worst)",
    "Goodput QPS",
    "Capacity",
    "Goodput of capacity (range)",
    "429+503 received",
    "Sessions/s",
    "Error-free sessions/s",
    "p99 ms",
    "Client CPU ms / request",
    "Lost / dup (worst)",
)


def setup(doc: dict) -> str:
    cfg = doc["config"]
    extra = ", ".join(f"{k}={v}" for k, v in cfg.get("fault_overrides", {}).items())
    text = cfg["profile"] + (f" ({extra})" if extra else "")
    if cfg.get("processes", 1) > 1:
        text += f", {cfg['processes']} processes"
    return text


def matrix_runs(root: Path) -> list[Path]:
    """The matrix runs under ``root``: its ``run*`` subdirectories, or ``root`` itself."""
    runs = sorted(p for p in root.glob("run*") if p.is_dir())
    return runs or [root]


def points(root: Path) -> dict[tuple[str, int, str], list[dict]]:
    """Every run of every point, keyed by set-up, sessions and mode (in matrix order)."""
    out: dict[tuple[str, int, str], list[dict]] = {}
    for run_dir in matrix_runs(root):
        for path in sorted(run_dir.glob("*/results.json")):
            doc = json.loads(path.read_text())
            for run in sorted(doc["runs"], key=lambda r: (r["totalSessions"], r["mode"])):
                out.setdefault((setup(doc), run["totalSessions"], run["mode"]), []).append(run)
    return out


def median(runs: list[dict], field: str) -> float:
    return statistics.median(float(r.get(field) or 0) for r in runs)


def row(key: tuple[str, int, str], runs: list[dict]) -> tuple[str, ...]:
    where, sessions, mode = key
    fractions = [float(r.get("goodputFraction") or 0) * 100 for r in runs]
    spread = f" ({min(fractions):.0f}-{max(fractions):.0f})" if len(runs) > 1 else ""
    overload = median(runs, "overloadRate") * 100
    return (
        where,
        str(sessions),
        mode,
        str(len(runs)),
        f"{min(r['completedSessions'] for r in runs)}/{sessions}",
        str(max(r["sessionVisibleErrors"] for r in runs)),
        f"{median(runs, 'goodputQps'):.1f}",
        f"{median(runs, 'serverCapacityQps'):.0f}",
        f"{statistics.median(fractions):.0f} %{spread}",
        f"{statistics.median(r.get('overloadAnswers', 0) for r in runs):.0f} ({overload:.2f} %)",
        f"{median(runs, 'sessionsPerSecond'):.2f}",
        _clean_rate(runs),
        f"{statistics.median(r['overall']['p99'] for r in runs):.0f}",
        _cpu_per_request(runs),
        f"{max(r['lostWrites'] for r in runs)} / {max(r['duplicateWrites'] for r in runs)}",
    )


def _clean_rate(runs: list[dict]) -> str:
    """Median error-free sessions/s over the runs that recorded it.

    A run recorded before the figure existed counts when it saw no visible error: every
    session it completed was then error-free.
    """
    rates = [
        r["cleanSessionsPerSecond"] if "cleanSessionsPerSecond" in r else r["sessionsPerSecond"]
        for r in runs
        if "cleanSessionsPerSecond" in r or not r["sessionVisibleErrors"]
    ]
    return f"{statistics.median(rates):.2f}" if rates else "-"


def _cpu_per_request(runs: list[dict]) -> str:
    """Median client CPU milliseconds per request over the runs that recorded both figures."""
    values = [v for v in map(cpu_per_request_ms, runs) if v is not None]
    return f"{statistics.median(values):.2f}" if values else "-"


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/bench/defaults")
    found = points(root)
    if not found:
        sys.exit(f"no results.json under {root}")
    table = [row(key, runs) for key, runs in found.items()]
    title = sys.argv[2] if len(sys.argv) > 2 else TITLE
    rst = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for cells in (HEADER, *table):
        rst.append(f"   * - {cells[0]}")
        rst += [f"     - {cell}" for cell in cells[1:]]
    (root / "summary.rst").write_text("\n".join(rst) + "\n")
    md = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(cells) + " |" for cells in table]
    (root / "summary.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
