"""The benchmark: a users x sessions matrix of agent sessions, baseline vs optimized.

See :mod:`deeplake_sdk.bench.workload` for what one session does, :mod:`~.runner` for how
the matrix runs and :mod:`~.report` for the output files. Run it with ``deeplake-sdk bench``.
"""

from deeplake_sdk.bench.runner import BenchConfig, run_matrix

__all__ = ["BenchConfig", "run_matrix"]
