"""File descriptors stay bounded when 100 greenlets read cached files (gevent patched)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import json, os, sys
    import gevent.pool
    from deeplake_sdk import ContentCache, DeeplakeApi, DeeplakeFs

    url, token, org, workspace, cache_dir = sys.argv[1:]
    fds = lambda: len(os.listdir("/proc/self/fd"))
    api = DeeplakeApi(token, org, workspace, url)
    with DeeplakeFs(api, cache=ContentCache(cache_dir)) as fs:
        files = [f"/notes/{i:02d}.md" for i in range(50)]
        for i, path in enumerate(files):
            fs.write_text(path, f"note {i}\\n" * (i + 1))
        fs.flush()
        fs.prefetch(files)
        before = fds()
        reads = []

        def reader(n):
            for k in range(50):
                i = (n + k) % 50
                reads.append(fs.read_text(files[i]) == f"note {i}\\n" * (i + 1))

        gevent.pool.Pool(100).map(reader, range(100))
        print(json.dumps({"before": before, "after": fds(), "reads": len(reads),
                          "correct": all(reads), "hits": fs.cache.stats.hits}))
    """
)


def test_cached_reads_from_100_greenlets_keep_fds_bounded(srv, workspace, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            srv.url,
            srv.token,
            srv.org,
            workspace,
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(out)
    assert out["reads"] == 5000 and out["correct"]
    assert out["hits"] >= 5000  # every read was served by the cache
    assert out["after"] - out["before"] <= 5
