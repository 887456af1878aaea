"""The client API: ``from nbflow.client import Flow, Run`` works as ``from nbflow import …``
does (each name is resolved on first use; importing this package loads nothing)."""

from __future__ import annotations

from typing import Any

_NAMES = {"Flow": "objects", "Run": "objects", "Step": "objects", "Task": "objects",
          "DataArtifact": "objects", "sql": "query", "compare": "query"}

__all__ = list(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'nbflow.client' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"nbflow.client.{module}"), name)
