"""State kept per process never mixes two orgs that use the same workspace name."""

from __future__ import annotations

from deeplake_sdk import ContentCache, DeeplakeApi, DeeplakeFs

DATE = "2026-01-01T00:00:00.000000Z"


def test_two_orgs_with_one_workspace_name_never_read_each_others_cache(srv, workspace, tmp_path):
    cache = ContentCache(tmp_path / "shared-cache")  # one cache directory for both
    contents = {"acme": "from acme", "beta": "from beta"}  # same size on purpose
    for token, org in (("tok-acme", "acme"), ("tok-beta", "beta")):
        api = DeeplakeApi(token, org, workspace, srv.url)
        with DeeplakeFs(api, cache=cache) as fs:
            fs.write_text("/same.md", contents[org], last_update_date=DATE)
            fs.flush()
            fs.refresh()
            assert fs.read_text("/same.md") == contents[org]  # now cached
    for token, org in (("tok-acme", "acme"), ("tok-beta", "beta")):
        api = DeeplakeApi(token, org, workspace, srv.url)
        with DeeplakeFs(api, cache=cache) as fs:
            assert fs.stat("/same.md").last_update_date == DATE
            assert fs.read_text("/same.md") == contents[org]
    cache.close()
