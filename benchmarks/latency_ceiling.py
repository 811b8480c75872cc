"""The goodput an ideal client could reach where the sessions, not the service, are the bound.

Run: .venv/bin/python benchmarks/latency_ceiling.py [--sessions 5] [--chain 10] ...

A simulation, not a measurement: ``--sessions`` sessions start together, each a chain of
``--chain`` requests sent one after the other (the benchmark's session at 5 QA rounds: the
listing, 5 tool steps, the summary's check, insert and read-back, the index), and each step
but every ``--every``-th also leaves a background statement (the journal's insert of its
events, which no one waits for). The service admits ``--slots`` requests in flight, each
taking a log-normal time (``--median-ms``, ``--sigma``: the profile ``seed``); the client
costs nothing and is never refused. Goodput is the requests answered per second until the
last one, as a fraction of the service's capacity (``slots / mean latency``), as the
benchmark reports it. Two schedulers: FIFO (every request waits its turn) and sessions first
(a background statement takes a slot only when no session's request waits).

Prints the median and the 10th-90th percentiles of ``--trials`` runs of each.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics


def one_run(args: argparse.Namespace, sessions_first: bool, rng: random.Random) -> float:
    """Goodput of one simulated run, as a fraction of the capacity."""
    mu = math.log(args.median_ms / 1000)
    now, free, answered = 0.0, args.slots, 0
    left = [args.chain] * args.sessions
    waiting: list[tuple[float, str, int]] = [(0.0, "session", s) for s in range(args.sessions)]
    running: list[tuple[float, str, int]] = []
    order = 0
    while True:
        while free and waiting:
            if sessions_first:
                pick = next((w for w in waiting if w[1] == "session"), waiting[0])
            else:
                pick = min(waiting)
            waiting.remove(pick)
            heapq.heappush(running, (now + rng.lognormvariate(mu, args.sigma), pick[1], pick[2]))
            free -= 1
        if not running:
            break
        now, kind, session = heapq.heappop(running)
        free, answered = free + 1, answered + 1
        if kind != "session":
            continue
        left[session] -= 1
        order += 1
        if args.every and left[session] % args.every == 0:
            waiting.append((now + order * 1e-9, "background", session))
        if left[session]:
            waiting.append((now + order * 1e-9, "session", session))
    capacity = args.slots / (args.median_ms / 1000 * math.exp(args.sigma**2 / 2))
    return answered / now / capacity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--chain", type=int, default=10, help="requests per session, in a row")
    parser.add_argument("--every", type=int, default=2, help="a background statement per N steps")
    parser.add_argument("--slots", type=int, default=6, help="requests the service admits at once")
    parser.add_argument("--median-ms", type=float, default=250.0)
    parser.add_argument("--sigma", type=float, default=0.6)
    parser.add_argument("--trials", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if min(args.sessions, args.chain, args.slots, args.trials) < 1 or args.every < 0:
        parser.error("--sessions, --chain, --slots and --trials must be >= 1, --every >= 0")
    rng = random.Random(args.seed)
    print(f"{'scheduler':16} {'median':>7} {'p10-p90':>12}   ({args.trials} runs)")
    for name, first in (("FIFO", False), ("sessions first", True)):
        runs = sorted(one_run(args, first, rng) for _ in range(args.trials))
        p10, p90 = runs[len(runs) // 10], runs[len(runs) * 9 // 10]
        print(f"{name:16} {statistics.median(runs):7.1%} {p10:5.1%}-{p90:5.1%}")


if __name__ == "__main__":
    main()
