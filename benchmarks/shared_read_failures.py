"""Shared reads under failures: how many callers of a shared read see an error.

Callers of one read at the same time share its rounds (:class:`SharedReads`). A round that
fails after its sender's retries used to fail all of its callers; now the callers it did not
send join one more round (shared too) when the failure is one the retry policy retries. This
script measures both: each iteration starts ``--callers`` concurrent callers of one read, first
without the extra round, then with it, against the embedded server answering a share of the
requests with a 500 (``--p-500``), with short backoffs so that it runs in seconds.

Usage::

    python benchmarks/shared_read_failures.py [--p-500 0.5] [--iterations 200] [--callers 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import gevent

from deeplake_sdk import DeeplakeApi, RetryPolicy
from deeplake_sdk.errors import DeeplakeError
from deeplake_sdk.server import local
from deeplake_sdk.shared_reads import SharedReads

SQL = "SELECT 1 AS v"


def one_wave(api: DeeplakeApi, reads: SharedReads, callers: int, follow: bool) -> int:
    """Failures among ``callers`` concurrent callers of one shared read."""
    again = api.retry_policy.should_retry if follow else None
    waves = [gevent.spawn(reads.read, SQL, lambda: api.query(SQL), again) for _ in range(callers)]
    gevent.joinall(waves)
    return sum(isinstance(g.exception, DeeplakeError) for g in waves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--p-500", type=float, default=0.5, help="share of requests failed")
    parser.add_argument("--iterations", type=int, default=200, help="waves per variant")
    parser.add_argument("--callers", type=int, default=20, help="concurrent callers per wave")
    args = parser.parse_args()
    os.environ.setdefault("DEEPLAKE_STATE_DIR", tempfile.mkdtemp())
    policy = RetryPolicy(backoff_base=0.01, backoff_max=0.05)
    with local(faults="none", durable=False) as server:
        api = DeeplakeApi(server.token, server.org, "bench", server.url, retries=policy)
        api.query("SELECT 1")
        server.set_faults(p_500=args.p_500, latency_fixed_ms=5, seed=11)
        failed = {False: 0, True: 0}
        requests = {False: 0, True: 0}
        for _ in range(args.iterations):
            for follow in (False, True):  # interleaved: both see the same service
                before = server.stats()["requests"]
                failed[follow] += one_wave(api, SharedReads(), args.callers, follow)
                requests[follow] += server.stats()["requests"] - before
        api.close()
    total = args.iterations * args.callers
    for follow, name in ((False, "failed round fails all"), (True, "one more round")):
        print(
            f"{name:24s} callers failed {failed[follow]:5d} of {total} "
            f"({100 * failed[follow] / total:5.2f} %), requests {requests[follow]}"
        )


if __name__ == "__main__":
    main()
