"""One table of the capacity matrix (benchmarks/capacity_matrix.sh) for the docs.

Reads ``<dir>/*/results.json`` and writes ``<dir>/summary.rst`` (a list table) and
``<dir>/summary.md``: per run, the set-up, sessions, mode, completed sessions, goodput as a
fraction of the server's capacity, 429+503 received, sessions/s, p99 and lost/duplicated
writes.

Usage::

    python benchmarks/capacity_summary.py [docs/bench/defaults]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEADER = (
    "Set-up",
    "Sessions",
    "Mode",
    "Completed",
    "Visible errors",
    "Goodput QPS",
    "Capacity",
    "Goodput of capacity",
    "429+503 received",
    "Sessions/s",
    "p99 ms",
    "Lost / dup",
)


def setup(doc: dict) -> str:
    cfg = doc["config"]
    extra = ", ".join(f"{k}={v}" for k, v in cfg.get("fault_overrides", {}).items())
    text = cfg["profile"] + (f" ({extra})" if extra else "")
    if cfg.get("processes", 1) > 1:
        text += f", {cfg['processes']} processes"
    return text


def rows(root: Path) -> list[tuple[str, ...]]:
    out = []
    for path in sorted(root.glob("*/results.json")):
        doc = json.loads(path.read_text())
        for run in sorted(doc["runs"], key=lambda r: (r["totalSessions"], r["mode"])):
            out.append(
                (
                    setup(doc),
                    str(run["totalSessions"]),
                    run["mode"],
                    f"{run['completedSessions']}/{run['totalSessions']}",
                    str(run["sessionVisibleErrors"]),
                    f"{run['goodputQps']:.1f}",
                    f"{run.get('serverCapacityQps', 0):.0f}",
                    f"{run.get('goodputFraction', 0) * 100:.0f} %",
                    f"{run.get('overloadAnswers', 0)} ({run.get('overloadRate', 0) * 100:.2f} %)",
                    f"{run.get('sessionsPerSecond', 0):.2f}",
                    f"{run['overall']['p99']:.0f}",
                    f"{run['lostWrites']} / {run['duplicateWrites']}",
                )
            )
    return out


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/bench/defaults")
    table = rows(root)
    rst = [".. list-table:: SDK defaults against several capacities", "   :header-rows: 1", ""]
    for row in (HEADER, *table):
        rst.append(f"   * - {row[0]}")
        rst += [f"     - {cell}" for cell in row[1:]]
    (root / "summary.rst").write_text("\n".join(rst) + "\n")
    md = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(row) + " |" for row in table]
    (root / "summary.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
