"""Credentials and settings: arguments > environment > ``~/.deeplake/credentials.json``.

Precedence, per field:

1. an explicit argument of :func:`load_credentials` (or of :class:`deeplake_sdk.DeeplakeApi`);
2. the environment: ``DEEPLAKE_TOKEN``, ``DEEPLAKE_ORG_ID``, ``DEEPLAKE_WORKSPACE_ID``,
   ``DEEPLAKE_API_URL``, ``DEEPLAKE_TABLE``, ``DEEPLAKE_SESSIONS_TABLE``,
   ``DEEPLAKE_ORG_NAME``;
3. the credentials file ``~/.deeplake/credentials.json`` (``{"token", "orgId",
   "workspaceId"?, "apiUrl"?, "orgName"?}``, as the agent-memory plugin writes it); its path
   can be changed with ``DEEPLAKE_CREDENTIALS``. Its ``orgName`` is used only when its
   ``orgId`` is the org in use;
4. defaults: workspace ``default``, URL ``https://api.deeplake.ai``, tables ``memory`` and
   ``sessions``.

The token is a secret: it is never logged and never part of ``repr()``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeplake_sdk.errors import ConfigError

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_SESSIONS_TABLE",
    "DEFAULT_TABLE",
    "DEFAULT_WORKSPACE",
    "Credentials",
    "credentials_path",
    "load_credentials",
    "says_off",
]

DEFAULT_API_URL = "https://api.deeplake.ai"
DEFAULT_WORKSPACE = "default"
DEFAULT_TABLE = "memory"
DEFAULT_SESSIONS_TABLE = "sessions"

logger = logging.getLogger(__name__)

ENV_TOKEN = "DEEPLAKE_TOKEN"
ENV_ORG = "DEEPLAKE_ORG_ID"
ENV_WORKSPACE = "DEEPLAKE_WORKSPACE_ID"
ENV_API_URL = "DEEPLAKE_API_URL"
ENV_TABLE = "DEEPLAKE_TABLE"
ENV_SESSIONS_TABLE = "DEEPLAKE_SESSIONS_TABLE"
ENV_CREDENTIALS = "DEEPLAKE_CREDENTIALS"
ENV_ORG_NAME = "DEEPLAKE_ORG_NAME"


@dataclass(frozen=True)
class Credentials:
    """Everything needed to reach one workspace of the service.

    Attributes:
        token: API token (secret; hidden from ``repr``).
        org_id: Organisation id, sent as ``X-Activeloop-Org-Id``.
        workspace_id: Workspace whose tables are used.
        api_url: Base URL of the service, without a trailing slash.
        table: Name of the memory table.
        sessions_table: Name of the sessions table.
        org_name: Display name of the organisation, when known (part of session file paths;
            see :attr:`org_label`).
    """

    token: str = field(repr=False)
    org_id: str
    workspace_id: str = DEFAULT_WORKSPACE
    api_url: str = DEFAULT_API_URL
    table: str = DEFAULT_TABLE
    sessions_table: str = DEFAULT_SESSIONS_TABLE
    org_name: str | None = None

    @property
    def org_label(self) -> str:
        """The org as session file paths name it: its name when known, else its id."""
        return self.org_name or self.org_id


def says_off(value: str) -> bool:
    """Whether an environment setting turns something off: ``0``, ``off``, ``false``, ``no``."""
    return value.strip().lower() in ("0", "off", "false", "no")


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    """Return the credentials file: ``$DEEPLAKE_CREDENTIALS`` or ``~/.deeplake/credentials.json``.

    Args:
        env: Environment to read (default: ``os.environ``).
    """
    env = os.environ if env is None else env
    override = env.get(ENV_CREDENTIALS)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".deeplake" / "credentials.json"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"credentials file {path} is not valid JSON ({exc}); expected "
            '{"token": "...", "orgId": "...", "workspaceId": "...", "apiUrl": "..."}'
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"credentials file {path} must hold a JSON object")
    return data


def _pick(*values: object) -> str | None:
    for value in values:
        if value is None:
            continue
        text = str(value).strip()
        if text:
            return text
    return None


def load_credentials(
    token: str | None = None,
    org_id: str | None = None,
    workspace_id: str | None = None,
    api_url: str | None = None,
    *,
    table: str | None = None,
    sessions_table: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Credentials:
    """Resolve credentials from arguments, then the environment, then the credentials file.

    The file is read only when a field is still missing after arguments and environment.

    Args:
        token: API token.
        org_id: Organisation id.
        workspace_id: Workspace id (default ``default``).
        api_url: Base URL of the service (default ``https://api.deeplake.ai``).
        table: Memory table name (default: ``DEEPLAKE_TABLE``, else ``memory``).
        sessions_table: Sessions table name (default: ``DEEPLAKE_SESSIONS_TABLE``, else
            ``sessions``).
        env: Environment to read instead of ``os.environ`` (tests).

    Returns:
        The resolved :class:`Credentials`.

    Raises:
        ConfigError: The token or the org id is missing everywhere, the file is unreadable, or
            the URL is not an ``http(s)://`` URL.
    """
    env = os.environ if env is None else env
    table = _pick(table, env.get(ENV_TABLE)) or DEFAULT_TABLE
    sessions_table = _pick(sessions_table, env.get(ENV_SESSIONS_TABLE)) or DEFAULT_SESSIONS_TABLE
    token = _pick(token, env.get(ENV_TOKEN))
    org_id = _pick(org_id, env.get(ENV_ORG))
    workspace_id = _pick(workspace_id, env.get(ENV_WORKSPACE))
    api_url = _pick(api_url, env.get(ENV_API_URL))
    org_name = _pick(env.get(ENV_ORG_NAME))

    path = credentials_path(env)
    if not (token and org_id and workspace_id and api_url):
        try:
            data = _read_file(path)
        except ConfigError as exc:
            if not (token and org_id):
                raise
            logger.warning("ignoring the credentials file: %s", exc)
            data = {}
        token = token or _pick(data.get("token"))
        org_id = org_id or _pick(data.get("orgId"), data.get("org_id"))
        workspace_id = workspace_id or _pick(data.get("workspaceId"), data.get("workspace_id"))
        api_url = api_url or _pick(data.get("apiUrl"), data.get("api_url"))
        if org_name is None and _pick(data.get("orgId"), data.get("org_id")) == org_id:
            org_name = _pick(data.get("orgName"), data.get("org_name"))

    missing = [name for name, value in (("token", token), ("org id", org_id)) if not value]
    if missing:
        raise ConfigError(
            f"no Deeplake {' and '.join(missing)} configured: set {ENV_TOKEN} and {ENV_ORG} "
            f'in the environment, or write {{"token": "...", "orgId": "..."}} to {path} '
            "(or pass the token and org id explicitly)"
        )
    api_url = (api_url or DEFAULT_API_URL).rstrip("/")
    if not api_url.startswith(("http://", "https://")):
        raise ConfigError(f"API URL must start with http:// or https://, got {api_url!r}")
    assert token is not None and org_id is not None  # for type checkers
    return Credentials(
        token=token,
        org_id=org_id,
        workspace_id=workspace_id or DEFAULT_WORKSPACE,
        api_url=api_url,
        table=table,
        sessions_table=sessions_table,
        org_name=org_name,
    )
