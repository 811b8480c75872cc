"""Benchmark output: ``results.json``, ``results.md`` / ``results.rst`` tables, ``results.png``."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deeplake_sdk.bench.metrics import cpu_per_request_ms

HEADER = (
    "Experiment",
    "Sessions",
    "Baseline queries",
    "Baseline errors",
    "Baseline crashed",
    "Baseline QPS",
    "Optimized queries",
    "Optimized errors",
    "Optimized crashed",
    "Optimized QPS",
    "QPS ratio",
    "Goodput ratio",
    "Lost / dup (opt.)",
)


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def table_rows(doc: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per experiment with both modes side by side (``-`` where a mode did not run)."""
    points: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    for run in doc["runs"]:
        key = (run["numUsers"], run["sessionsPerUser"])
        points.setdefault(key, {})[run["mode"]] = run
    rows = []
    for (users, per_user), modes in sorted(
        points.items(), key=lambda kv: (kv[0][0] * kv[0][1], kv[0])
    ):
        base, opt = modes.get("baseline"), modes.get("optimized")
        cells = [f"{users} users x {per_user} sessions", str(users * per_user)]
        for run in (base, opt):
            if run is None:
                cells += ["-"] * 4
                continue
            cells += [
                str(run["totalQueries"]),
                f"{run['totalErrors']} ({_pct(run['errorRate'])})",
                str(run["crashedSessions"]),
                f"{run['throughputQps']:.1f}",
            ]
        both_ran = base is not None and opt is not None
        cells.append(_ratio(opt, base, "throughputQps") if both_ran else "-")
        cells.append(_ratio(opt, base, "goodputQps") if both_ran else "-")
        cells.append(f"{opt['lostWrites']} / {opt['duplicateWrites']}" if opt else "-")
        rows.append(tuple(cells))
    return rows


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(opt: Any, base: Any, key: str) -> str:
    """``opt[key] / base[key]`` as ``1.23x`` (``-`` when the baseline value is 0)."""
    denominator = base.get(key, 0)
    return f"{opt.get(key, 0) / denominator:.2f}x" if denominator else "-"


def latency_rows(doc: dict[str, Any]) -> list[tuple[str, ...]]:
    """Per run: completion, goodput, server load, latency percentiles and durability."""
    rows = []
    for run in doc["runs"]:
        o = run["overall"]
        rows.append(
            (
                run["experiment"],
                run["mode"],
                f"{run['completedSessions']}/{run['totalSessions']}",
                f"{run['sessionErrorRate'] * 100:.2f}%",
                f"{run.get('goodputQps', 0):.1f}",
                f"{run.get('admittedQps', 0):.1f}",
                f"{run['capacityFraction'] * 100:.0f}%" if "capacityFraction" in run else "-",
                f"{run['goodputFraction'] * 100:.0f}%" if "goodputFraction" in run else "-",
                f"{run['overloadAnswers']} ({run['overloadRate'] * 100:.2f}%)"
                if "overloadAnswers" in run
                else "-",
                f"{run['sessionsPerSecond']:.2f}" if "sessionsPerSecond" in run else "-",
                f"{run['cleanSessionsPerSecond']:.2f}" if "cleanSessionsPerSecond" in run else "-",
                f"{o['p50']:.0f} / {o['p95']:.0f} / {o['p99']:.0f}",
                _number(cpu_per_request_ms(run)),
                f"{run['lostWrites']} / {run['duplicateWrites']}",
            )
        )
    return rows


LATENCY_HEADER = (
    "Experiment",
    "Mode",
    "Completed",
    "Session-visible errors",
    "Goodput QPS",
    "Admitted QPS",
    "Of capacity",
    "Goodput of capacity",
    "429+503 received",
    "Sessions/s",
    "Error-free sessions/s",
    "Latency p50 / p95 / p99 (ms)",
    "Client CPU ms / request",
    "Lost / dup",
)


def markdown(doc: dict[str, Any]) -> str:
    """The results as markdown tables."""
    cfg = doc["config"]
    out = [
        f"Profile `{cfg['profile']}`, seed {cfg['seed']}, {cfg['rounds']} QA rounds per session, "
        f"{cfg['processes']} worker process(es); machine: {doc['machine']['cpus']} CPUs, "
        f"Python {doc['machine']['python']}; run {doc['startedAt']}.",
        "",
        _md_table(HEADER, table_rows(doc)),
        "",
        _md_table(LATENCY_HEADER, latency_rows(doc)),
        "",
    ]
    return "\n".join(out)


def restructuredtext(doc: dict[str, Any]) -> str:
    """The results as reStructuredText list tables (for the Sphinx docs)."""
    cfg = doc["config"]
    out = [
        f"Profile ``{cfg['profile']}``, seed {cfg['seed']}, {cfg['rounds']} QA rounds per "
        f"session, {cfg['processes']} worker process(es); machine: {doc['machine']['cpus']} "
        f"CPUs, Python {doc['machine']['python']}; run {doc['startedAt']}.",
        "",
        _rst_table("Throughput, errors and durability per experiment", HEADER, table_rows(doc)),
        _rst_table("Latency and server load per run", LATENCY_HEADER, latency_rows(doc)),
    ]
    return "\n".join(out)


def _md_table(header: Sequence[str], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _rst_table(title: str, header: Sequence[str], rows: list[tuple[str, ...]]) -> str:
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in (tuple(header), *rows):
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines) + "\n"


def _by_sessions(runs: list[dict[str, Any]], key: str, scale: float = 1.0) -> tuple[list, list]:
    """Mean of ``key`` per distinct number of concurrent sessions (several points share one)."""
    groups: dict[int, list[float]] = {}
    for run in runs:
        groups.setdefault(run["totalSessions"], []).append(run.get(key, 0) * scale)
    xs = sorted(groups)
    return xs, [sum(groups[x]) / len(groups[x]) for x in xs]


def plot(doc: dict[str, Any], path: Path) -> bool:
    """Error rate and QPS against concurrent sessions, both modes; False without matplotlib.

    Every run is a marker; the line joins the mean of the runs with the same number of
    concurrent sessions. The throughput panel also shows goodput (successful queries/s).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax_err, ax_qps) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"baseline": "tab:blue", "optimized": "tab:orange"}
    for mode, marker in (("baseline", "o"), ("optimized", "s")):
        runs = [r for r in doc["runs"] if r["mode"] == mode]
        if not runs:
            continue
        color = colors[mode]
        x_all = [r["totalSessions"] for r in runs]
        ax_err.scatter(
            x_all, [r["errorRate"] * 100 for r in runs], marker=marker, color=color, alpha=0.5, s=18
        )
        ax_err.plot(*_by_sessions(runs, "errorRate", 100), "-", color=color, label=mode)
        ax_qps.scatter(
            x_all, [r["throughputQps"] for r in runs], marker=marker, color=color, alpha=0.5, s=18
        )
        ax_qps.plot(*_by_sessions(runs, "throughputQps"), "-", color=color, label=f"{mode} QPS")
        ax_qps.plot(*_by_sessions(runs, "goodputQps"), ":", color=color, label=f"{mode} goodput")
    sizes = [r["totalSessions"] for r in doc["runs"]]
    ticks = [
        t
        for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
        if min(sizes) <= t <= max(sizes)
    ]
    for ax, title, ylabel in (
        (ax_err, "Error rate", "errors / queries (%)"),
        (ax_qps, "Throughput", "queries per second"),
    ):
        ax.set_xscale("log")
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_title(title)
        ax.set_xlabel("concurrent sessions")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    cfg = doc["config"]
    cap = cfg.get("max_concurrency", 5)
    fig.suptitle(
        f"deeplake-sdk benchmark: profile {cfg['profile']}, optimized = "
        + ("defaults (adaptive limit per origin)" if cap >= 256 else f"cap {cap} in flight")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_reports(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write every output file into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("results.json", json.dumps(doc, indent=2) + "\n"),
        ("results.md", markdown(doc)),
        ("results.rst", restructuredtext(doc)),
    ):
        (out_dir / name).write_text(text, encoding="utf-8")
        written.append(out_dir / name)
    if plot(doc, out_dir / "results.png"):
        written.append(out_dir / "results.png")
    if plot_limits(doc, out_dir / "limits.png"):
        written.append(out_dir / "limits.png")
    return written


def plot_limits(doc: dict[str, Any], path: Path) -> bool:
    """The optimized runs' adaptive limit and requests in flight over time, one panel per run.

    The attempts per second and the pace are drawn on a right axis when the series has them.

    False without matplotlib or when no run recorded its limit.
    """
    runs = [r for r in doc["runs"] if r["mode"] == "optimized" and r.get("limitSeries")]
    if not runs:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    cols = min(4, len(runs))
    rows = (len(runs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, run in zip([a for row in axes for a in row], runs, strict=False):
        series = [points for points in run["limitSeries"] if points]
        _plot_field(ax, series, 1, style="-", color="tab:orange", label="limit", lw=1)
        _plot_field(ax, series, 2, style=":", color="tab:blue", label="in flight", lw=1)
        _plot_rates(ax, run)
        ax.set_title(f"{run['totalSessions']} sessions", fontsize="small")
        ax.set_xlabel("seconds", fontsize="small")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
    for ax in [a for row in axes for a in row][len(runs) :]:
        ax.axis("off")
    fig.suptitle(f"adaptive limit per process over time, profile {doc['config']['profile']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _plot_rates(ax: Any, run: dict[str, Any]) -> None:
    """Attempts per second (all processes summed) and each process's pace, on a right axis."""
    series = [s for s in run["limitSeries"] if s and len(s[0]) >= 6]
    if not series:
        return
    right = ax.twinx()
    _plot_field(right, series, 4, style="--", color="tab:green", label="pace /s", lw=0.8)
    t, rate = attempt_rate(series)
    right.plot(t, rate, "-", color="tab:gray", lw=0.8, alpha=0.8, label="attempts /s")
    if run.get("serverCapacityQps"):
        right.axhline(run["serverCapacityQps"], color="tab:red", lw=0.6, alpha=0.5)
    right.tick_params(labelsize="x-small")
    right.legend(fontsize="x-small", loc="lower right")


def _plot_field(
    ax: Any,
    series: list[list[list[float]]],
    field: int,
    *,
    style: str,
    color: str,
    label: str,
    lw: float,
) -> None:
    """One line per process of field ``field`` of its limit series over time (one label)."""
    for k, points in enumerate(series):
        ax.plot(
            [p[0] for p in points],
            [p[field] for p in points],
            style,
            color=color,
            lw=lw,
            label=label if k == 0 else None,
        )


def attempt_rate(
    series: list[list[list[float]]], step: float = 1.0
) -> tuple[list[float], list[float]]:
    """Attempts per second of all processes together, per ``step`` seconds.

    Args:
        series: Each process's limit series (``granted`` is the 6th field).
        step: Width of a bin, in seconds.
    """
    end = max(p[-1][0] for p in series)
    bins = int(end / step) + 1
    counts = [0.0] * bins
    for points in series:
        for before, now in itertools.pairwise(points):
            counts[min(bins - 1, int(now[0] / step))] += now[5] - before[5]
    return [(i + 0.5) * step for i in range(bins)], [c / step for c in counts]
