"""Where task results land: the home, content-addressed objects, manifests, the catalog.

Light to import (kernels import it): names resolve on first use, and only
``nbflow.store.catalog`` imports duckdb.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "Home": "nbflow.store.home",
    "ObjectStore": "nbflow.store.objects",
    "ArtifactRecord": "nbflow.store.serialize",
    "save_artifact": "nbflow.store.serialize",
    "load_artifact": "nbflow.store.serialize",
    "load_arrow_table": "nbflow.store.serialize",
    "TaskManifest": "nbflow.store.manifest",
    "write_manifest": "nbflow.store.manifest",
    "read_manifest": "nbflow.store.manifest",
    "RunRecord": "nbflow.store.events",
    "TaskStarted": "nbflow.store.events",
    "TaskFinished": "nbflow.store.events",
    "RunFinished": "nbflow.store.events",
    "Catalog": "nbflow.store.catalog",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbflow.store' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
