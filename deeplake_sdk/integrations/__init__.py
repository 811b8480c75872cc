"""Adapters that put the memory where agent frameworks already look for it.

Each adapter is a thin layer over :class:`~deeplake_sdk.DeeplakeFs`,
:class:`~deeplake_sdk.SessionLog` and the grep engine, and each third-party library is an
optional extra:

* :mod:`deeplake_sdk.integrations.claude_code`: Claude Code hooks (no extra; ``[hooks]``);
* :mod:`deeplake_sdk.integrations.mcp_server`: an MCP server over stdio (``[mcp]``);
* :mod:`deeplake_sdk.integrations.fsspec`: an fsspec filesystem, protocol ``deeplake``
  (``[fsspec]``);
* :mod:`deeplake_sdk.integrations.langgraph`: a LangGraph ``BaseStore`` (``[langgraph]``);
* :mod:`deeplake_sdk.integrations.anthropic`: a backend of the Anthropic memory tool
  (``[anthropic]``).

Importing this package imports none of them.
"""
