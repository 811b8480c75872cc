"""The agent-memory filesystem over the memory and sessions tables.

Its classes are imported on first use, so that :mod:`deeplake_sdk.fs.paths` (pure path rules)
costs nothing more to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deeplake_sdk._lazy import submodule

if TYPE_CHECKING:
    from deeplake_sdk.fs.core import DeeplakeFs, FileStat, GrepReport

__all__ = ["DeeplakeFs", "FileStat", "GrepReport"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        return submodule(__name__, name)
    from deeplake_sdk.fs import core

    value = getattr(core, name)
    globals()[name] = value
    return value
