"""The agent-memory filesystem over the memory and sessions tables."""

from deeplake_sdk.fs.core import DeeplakeFs, FileStat, GrepReport

__all__ = ["DeeplakeFs", "FileStat", "GrepReport"]
