"""Attributes of a module imported on first use (the module's ``__getattr__``, PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes", "submodule"]


def lazy_attributes(
    module: str, origins: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A ``__getattr__`` for ``module`` that imports its names from where they are defined.

    Args:
        module: The module's name.
        origins: Name -> the module defining it; it is imported at the name's first use and
            the value kept in ``namespace`` (later uses do not come here).
        namespace: The module's ``globals()``.

    Other names of a package are taken for its submodules (:func:`submodule`).
    """

    def __getattr__(name: str) -> Any:
        origin = origins.get(name)
        if origin is None:
            if "__path__" not in namespace:  # a module, not a package: no submodules
                raise AttributeError(f"module {module!r} has no attribute {name!r}")
            return submodule(module, name)
        value = namespace[name] = getattr(importlib.import_module(origin), name)
        return value

    return __getattr__


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
