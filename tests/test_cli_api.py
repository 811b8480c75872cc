"""``deeplake-sdk query`` and ``deeplake-sdk tables`` against the local server."""

from __future__ import annotations

import json

import pytest

from deeplake_sdk.cli import main
from deeplake_sdk.cli.api_cmds import format_table


@pytest.fixture
def cred_args(srv, workspace):
    return ["--token", srv.token, "--org", srv.org, "--workspace", workspace, "--url", srv.url]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_query_prints_an_aligned_table(capsys, cred_args):
    code, out, _ = run(
        capsys,
        "query",
        "SELECT $1 AS name, $2::int AS n, NULL AS x",
        "--param",
        "it's",
        "--param-json",
        "42",
        *cred_args,
    )
    assert code == 0
    assert out.splitlines() == ["name | n  | x", "-----+----+-----", "it's | 42 | NULL", "(1 row)"]


def test_query_json_and_ddl(capsys, cred_args):
    code, out, _ = run(capsys, "query", "CREATE TABLE t (a TEXT) USING deeplake", *cred_args)
    assert code == 0 and out.startswith("OK")
    code, out, _ = run(capsys, "query", "INSERT INTO t VALUES ('x\ny')", *cred_args)
    assert code == 0
    code, out, _ = run(capsys, "query", "SELECT a FROM t", "--json", *cred_args)
    assert json.loads(out) == [{"a": "x\ny"}]
    code, out, _ = run(capsys, "query", "SELECT a FROM t", *cred_args)
    assert "x\\ny" in out  # one line per row


def test_tables(capsys, cred_args):
    run(capsys, "query", "CREATE TABLE b (a TEXT) USING deeplake", *cred_args)
    run(capsys, "query", "CREATE TABLE a (a TEXT) USING deeplake", *cred_args)
    code, out, _ = run(capsys, "tables", *cred_args)
    assert code == 0 and out.split() == ["a", "b"]
    code, out, _ = run(capsys, "tables", "--json", *cred_args)
    assert json.loads(out) == ["a", "b"]


def test_errors_are_one_line_with_exit_2(capsys, cred_args, srv, tmp_path, monkeypatch):
    code, out, err = run(capsys, "query", "SELEC 1", *cred_args)
    assert code == 2 and out == ""
    assert err.startswith("deeplake-sdk: error: HTTP 400: syntax error") and err.count("\n") == 1
    monkeypatch.setenv("DEEPLAKE_CREDENTIALS", str(tmp_path / "none.json"))
    for var in ("DEEPLAKE_TOKEN", "DEEPLAKE_ORG_ID"):
        monkeypatch.delenv(var, raising=False)
    code, _, err = run(capsys, "tables", "--url", srv.url)
    assert code == 2 and "DEEPLAKE_TOKEN" in err
    with pytest.raises(SystemExit) as info:
        main(["query", "SELECT 1", "--param-json", "{bad"])
    assert info.value.code == 2


def test_help_has_examples(capsys):
    for command in ("query", "tables"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        assert "examples:" in capsys.readouterr().out


def test_format_table():
    assert format_table(["a"], []) == "a\n-\n(0 rows)\n"
    text = format_table(["k", "v"], [["x", {"j": [1]}], ["long", "t\tab"]])
    assert text.splitlines()[2:4] == ['x    | {"j": [1]}', "long | t\\tab"]
