"""Package names that load on first use (PEP 562), so that importing a package stays cheap.

A package lists ``name -> submodule`` and gets its module-level ``__getattr__`` and ``__dir__``::

    _LAZY = {"NestedAE": "chain"}
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

The first ``package.NestedAE`` imports ``package.chain`` and keeps the value in the package's namespace,
so later lookups never come back here.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: MutableMapping[str, Any],
                 names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each of ``names`` (name -> submodule, relative to the
    package, dotted for deeper ones) is imported on first access and cached in ``namespace`` (the package's
    ``globals()``); any other name raises ``AttributeError`` as a module would."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
