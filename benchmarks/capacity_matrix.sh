#!/bin/sh
# The SDK's defaults (no tuning flag) against several server capacities: the reduced matrix
# published in docs/bench/defaults/ (see docs/benchmark.rst), run RUNS times (default 1) into
# <out-dir>/run1, run2... (with RUNS=3 the summary gives medians). Each run starts its own
# local server on unsafe PostgreSQL storage (no fsync), so the figures measure the client.
#
# Usage: [RUNS=3] sh benchmarks/capacity_matrix.sh [out-dir]   (5-12 minutes per run on 2 CPUs)
set -e
OUT=${1:-docs/bench/defaults}
RUNS=${RUNS:-1}
BENCH=${BENCH:-.venv/bin/deeplake-sdk bench}
i=1
while [ "$i" -le "$RUNS" ]; do
    R="$OUT/run$i"
    # profile beta (capacity 400 requests/s): 50, 200 and 1,000 sessions, both modes
    $BENCH --users 5,20,100 --sessions 10 --mode baseline,optimized --profile beta --out "$R/beta"
    # the same, 1,000 sessions split over 4 worker processes sharing one host budget
    $BENCH --users 100 --sessions 10 --mode optimized --profile beta --processes 4 \
        --out "$R/beta-p4"
    # profile seed (capacity 20 requests/s, latency in the hundreds of ms)
    $BENCH --users 5 --sessions 1,10 --mode baseline,optimized --profile seed --out "$R/seed"
    # three other capacities on top of beta: 100, 200 and 2,000 requests/s (2,000 is beyond
    # what one client process and the server reach together on 2 CPUs)
    $BENCH --users 5,20 --sessions 10 --mode optimized --profile beta \
        --fault max_inflight=8 --fault rate_per_s=100 --fault burst=50 --out "$R/cap100"
    $BENCH --users 20,100 --sessions 10 --mode optimized --profile beta \
        --fault max_inflight=16 --fault rate_per_s=200 --fault burst=100 --out "$R/cap200"
    $BENCH --users 20,100 --sessions 10 --mode optimized --profile beta \
        --fault max_inflight=128 --fault rate_per_s=2000 --fault burst=1000 --out "$R/cap2000"
    i=$((i + 1))
done
