"""The agent-memory filesystem over the memory and sessions tables.

Its classes are imported on first use, so that :mod:`deeplake_sdk.fs.paths` (pure path rules)
costs nothing more to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deeplake_sdk._lazy import lazy_attributes

if TYPE_CHECKING:
    from deeplake_sdk.fs.core import DeeplakeFs, FileStat, GrepReport

__all__ = ["DeeplakeFs", "FileStat", "GrepReport"]


__getattr__ = lazy_attributes(__name__, dict.fromkeys(__all__, "deeplake_sdk.fs.core"), globals())
