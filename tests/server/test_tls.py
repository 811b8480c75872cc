"""The server over https (--tls-cert/--tls-key): the SDK and a plain requests client."""

from __future__ import annotations

import pytest
import requests

from deeplake_sdk import DeeplakeApi
from deeplake_sdk.server import local
from deeplake_sdk.server.tls import make_test_certs


def test_sdk_and_requests_work_over_tls(pg_dsn, tmp_path, workspace, monkeypatch):
    ca, cert, key = make_test_certs(tmp_path)
    with local(dsn=pg_dsn, tls=(cert, key), ca_file=ca) as s:
        assert s.url.startswith("https://127.0.0.1:")
        resp = requests.post(
            f"{s.url}/workspaces/{workspace}/tables/query",
            json={"query": "SELECT 41 + 1"},
            headers=s.headers,
            verify=ca,
            timeout=30,
        )
        assert resp.status_code == 200 and resp.json()["rows"] == [[42]]
        with pytest.raises(requests.exceptions.SSLError):  # an unknown CA is refused
            requests.get(s.url + "/_admin/stats", headers=s.headers, timeout=30)
        with pytest.raises(requests.exceptions.ConnectionError):  # no plain http on that port
            requests.get(s.url.replace("https", "http"), timeout=30)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
        api = DeeplakeApi(s.token, s.org, workspace, s.url)
        try:
            api.query("CREATE TABLE t (a text)")
            api.query("INSERT INTO t VALUES ($1)", ["over tls"])
            assert api.query("SELECT a FROM t") == [{"a": "over tls"}]
        finally:
            api.close()
        assert s.stats()["status_counts"]["200"] >= 4
