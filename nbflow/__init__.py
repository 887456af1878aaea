"""nbflow: mark notebook cells with ``%%step``/``%%branch``; replay them headless as a DAG.

This module is the public surface. It imports nothing heavy: every name below is
resolved on first use (``nbflow.Flow``, ``nbflow.sql``), so ``import nbflow`` is
cheap in a kernel and in the CLI.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Flow": "nbflow.client.objects",
    "Run": "nbflow.client.objects",
    "Step": "nbflow.client.objects",
    "Task": "nbflow.client.objects",
    "sql": "nbflow.client.query",
    "compare": "nbflow.client.query",
    "register_serializer": "nbflow.store.serializers",
}

__all__ = [*_LAZY, "load_ipython_extension", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbflow' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbflow``: register ``%%step``, ``%%branch`` and ``%nbflow``."""
    from nbflow.interactive.magics import register

    register(ipython)
