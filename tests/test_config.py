import json

import pytest

from deeplake_sdk.config import Credentials, credentials_path, load_credentials
from deeplake_sdk.errors import ConfigError


@pytest.fixture
def cred_file(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text(
        json.dumps(
            {
                "token": "file-token",
                "orgId": "file-org",
                "workspaceId": "file-ws",
                "apiUrl": "http://file:1/",
            }
        )
    )
    return path


def test_arguments_beat_env_beat_file(cred_file):
    env = {
        "DEEPLAKE_CREDENTIALS": str(cred_file),
        "DEEPLAKE_TOKEN": "env-token",
        "DEEPLAKE_ORG_ID": "env-org",
    }
    c = load_credentials(env=env)
    assert (c.token, c.org_id) == ("env-token", "env-org")
    # fields missing from args and env come from the file
    assert (c.workspace_id, c.api_url) == ("file-ws", "http://file:1")
    c = load_credentials(token="arg-token", workspace_id="arg-ws", env=env)
    assert (c.token, c.org_id, c.workspace_id) == ("arg-token", "env-org", "arg-ws")


def test_file_only(cred_file):
    c = load_credentials(env={"DEEPLAKE_CREDENTIALS": str(cred_file)})
    assert c == Credentials("file-token", "file-org", "file-ws", "http://file:1")


def test_defaults_and_tables(tmp_path):
    env = {
        "DEEPLAKE_CREDENTIALS": str(tmp_path / "none.json"),
        "DEEPLAKE_TOKEN": "t",
        "DEEPLAKE_ORG_ID": "o",
        "DEEPLAKE_TABLE": "mem2",
        "DEEPLAKE_SESSIONS_TABLE": "s2",
    }
    c = load_credentials(env=env)
    assert c.workspace_id == "default"
    assert c.api_url == "https://api.deeplake.ai"
    assert (c.table, c.sessions_table) == ("mem2", "s2")


def test_missing_token_names_both_ways_out(tmp_path):
    env = {"DEEPLAKE_CREDENTIALS": str(tmp_path / "none.json")}
    with pytest.raises(ConfigError) as info:
        load_credentials(env=env)
    text = str(info.value)
    assert "DEEPLAKE_TOKEN" in text and "DEEPLAKE_ORG_ID" in text
    assert "none.json" in text
    with pytest.raises(ConfigError, match="org id"):
        load_credentials(token="t", env=env)


def test_bad_file_and_url(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_credentials(env={"DEEPLAKE_CREDENTIALS": str(bad)})
    with pytest.raises(ConfigError, match="http"):
        load_credentials("t", "o", api_url="ftp://x", env={"DEEPLAKE_CREDENTIALS": str(bad)})
    # a broken file is ignored when token and org come from elsewhere
    c = load_credentials("t", "o", env={"DEEPLAKE_CREDENTIALS": str(bad)})
    assert c.workspace_id == "default"


def test_token_never_in_repr():
    c = Credentials(token="s3cret-token", org_id="o")
    assert "s3cret" not in repr(c)


def test_credentials_path_default(monkeypatch):
    monkeypatch.delenv("DEEPLAKE_CREDENTIALS", raising=False)
    assert credentials_path().parts[-2:] == (".deeplake", "credentials.json")


def test_org_name_from_env_or_the_file_of_the_same_org(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"token": "t", "orgId": "org-1", "orgName": "Acme Corp"}))
    c = load_credentials(env={"DEEPLAKE_CREDENTIALS": str(path)})
    assert (c.org_id, c.org_name, c.org_label) == ("org-1", "Acme Corp", "Acme Corp")
    other = {"DEEPLAKE_CREDENTIALS": str(path), "DEEPLAKE_ORG_ID": "org-2"}
    c = load_credentials(env=other)  # the file's name belongs to another org
    assert (c.org_id, c.org_name, c.org_label) == ("org-2", None, "org-2")
    c = load_credentials(env={**other, "DEEPLAKE_ORG_NAME": "Beta"})
    assert (c.org_name, c.org_label) == ("Beta", "Beta")
