"""Task manifests: the completion marker, round-tripped on local and memory:// homes."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from nbflow.store.home import Home
from nbflow.store.manifest import TaskManifest, manifest_path, read_manifest, write_manifest
from nbflow.store.serialize import save_artifact


def manifest(home: Home) -> TaskManifest:
    arts = [save_artifact(home.objects, "x", 3), save_artifact(home.objects, "g", (i for i in range(3)))]
    return TaskManifest(
        flow="clf", run=7, step="train", index=2, artifacts=arts,
        input_hashes={"data": "ab" * 16}, started=1.5, ended=2.5, pid=123,
        peak_memory=1 << 30, python="3.11.7", packages={"pandas": "3.1"},
        warnings=["input 'df' changed without being republished"],
    )


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_round_trip(kind: str, tmp_path: Path) -> None:
    home = Home(tmp_path / "h") if kind == "local" else Home(f"memory://m-{uuid.uuid4().hex}")
    assert read_manifest(home, "clf", 7, "train", 2) is None
    m = manifest(home)
    path = write_manifest(home, m)
    assert path == manifest_path(home, "clf", 7, "train", 2)
    back = read_manifest(home, "clf", 7, "train", 2)
    assert back == m
    assert back is not None and back.artifact("g") is not None
    assert back.artifact("g").persisted is False  # type: ignore[union-attr]
    if kind == "local":
        assert os.listdir(os.path.dirname(path)) == ["manifest.json"]
