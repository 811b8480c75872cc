"""``connect()``: a client for the configured service, or for an embedded local server.

Scripts and examples that should run anywhere use it::

    from deeplake_sdk.server import connect

    with connect() as api:
        print(api.query("SELECT 1 AS one"))

With credentials configured (``DEEPLAKE_TOKEN`` and ``DEEPLAKE_ORG_ID``, or
``~/.deeplake/credentials.json``) the client talks to that service; without them a local server
on a temporary embedded PostgreSQL is started for the ``with`` block and stopped (with its
PostgreSQL and data) at the end.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deeplake_sdk.api import DeeplakeApi

__all__ = ["connect"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def connect(
    workspace: str | None = None,
    *,
    embedded: bool | None = None,
    server_options: dict[str, Any] | None = None,
    **api_options: Any,
) -> Iterator[DeeplakeApi]:
    """Yield a :class:`~deeplake_sdk.DeeplakeApi` for the configured service or a local one.

    Args:
        workspace: Workspace id (default: ``DEEPLAKE_WORKSPACE_ID``, the credentials file,
            then ``default``).
        embedded: ``None`` (default): the configured service when credentials can be found,
            else an embedded local server; ``True``: always an embedded local server;
            ``False``: the configured service only (missing credentials raise).
        server_options: Keyword options of :func:`~deeplake_sdk.server.local` for an
            embedded server, e.g. ``{"latency_fixed_ms": 50}`` to behave like a remote
            service; ignored when the configured service is used.
        **api_options: Keyword options of :class:`~deeplake_sdk.DeeplakeApi`
            (``max_concurrency``, ``timeout``, ``retries``, ``adaptive``).

    Yields:
        The client. An embedded server is reachable at ``api.credentials.api_url`` while the
        block runs and is stopped when it ends.

    Raises:
        ConfigError: ``embedded=False`` and no credentials were found.
        ServerStartError: The embedded server could not start.
    """
    from deeplake_sdk.api import DeeplakeApi
    from deeplake_sdk.config import load_credentials
    from deeplake_sdk.errors import ConfigError

    if not embedded:
        try:
            load_credentials()
        except ConfigError:
            if embedded is False:
                raise
        else:
            api = DeeplakeApi(workspace_id=workspace, **api_options)
            logger.info("using the configured service %s", api.credentials.api_url)
            try:
                yield api
            finally:
                api.close()
            return

    from deeplake_sdk.server import local

    with local(**(server_options or {})) as srv:
        logger.info("no credentials configured: started a local server on %s", srv.url)
        api = DeeplakeApi(srv.token, srv.org, workspace, srv.url, **api_options)
        try:
            yield api
        finally:
            api.close()
