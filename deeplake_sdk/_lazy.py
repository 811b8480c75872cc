"""Attributes of a package imported on first use (the package's ``__getattr__``)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["submodule"]


def submodule(package: str, name: str) -> Any:
    """``package.name`` imported: ``import deeplake_sdk`` then ``deeplake_sdk.journal`` works.

    Raises:
        AttributeError: ``package`` has no such submodule.
    """
    try:
        return importlib.import_module(f"{package}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.{name}":
            raise  # the submodule exists and failed to import
        raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
