"""Home: URLs, layout, catalog placement, atomic small files, pickling."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from nbflow.errors import StoreError
from nbflow.store.home import Home


def test_default_is_env_or_dot_nbflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NBFLOW_HOME", raising=False)
    assert Home().url == str(tmp_path / ".nbflow")
    monkeypatch.setenv("NBFLOW_HOME", str(tmp_path / "elsewhere"))
    home = Home()
    assert home.url == home.root == str(tmp_path / "elsewhere")
    assert home.catalog_path == str(tmp_path / "elsewhere" / "catalog.duckdb")


def test_local_layout(tmp_path: Path) -> None:
    home = Home(f"file://{tmp_path}/h")
    assert home.is_local and home.url == f"{tmp_path}/h"
    assert home.task_prefix("clf", 3, "train", 0) == f"{tmp_path}/h/runs/clf/3/train/0"
    assert home.run_prefix("clf", 3) == f"{tmp_path}/h/runs/clf/3"
    assert home.objects.root == f"{tmp_path}/h/objects" and home.objects.is_local
    with pytest.raises(StoreError, match="path component"):
        home.task_prefix("clf", 3, "../x", 0)


def test_remote_home_keeps_catalog_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    home = Home("memory://bucket/prefix")
    assert not home.is_local
    assert home.catalog_path == str(tmp_path / ".nbflow" / "catalog.duckdb")
    assert Home("memory://b", catalog=tmp_path / "c.duckdb").catalog_path == str(
        tmp_path / "c.duckdb"
    )
    path = home.task_prefix("f", 1, "s", 0) + "/notebook.ipynb"
    home.write_text(path, "{}")
    assert home.read_text(path) == "{}" and home.exists(path)
    assert home.url_of(path).startswith("memory://")


def test_atomic_text_files(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    path = home.task_prefix("f", 1, "s", 0) + "/notebook.ipynb"
    home.write_text(path, "one")
    home.write_text(path, "two")
    assert home.read_text(path) == "two"
    assert os.listdir(os.path.dirname(path)) == ["notebook.ipynb"]  # no temp files left
    with pytest.raises(StoreError, match="does not exist"):
        home.read_text(path + ".missing")


def test_pickles_as_its_url(tmp_path: Path) -> None:
    home = Home(tmp_path / "h", catalog=tmp_path / "cat.duckdb")
    assert home.objects.is_local  # cached state must not travel
    clone = pickle.loads(pickle.dumps(home))
    assert clone == home and clone.catalog_path == home.catalog_path
    assert "objects" not in clone.__dict__


def test_constructing_a_home_imports_nothing_heavy(tmp_path: Path) -> None:
    code = (
        "import sys; from nbflow.store.home import Home; import nbflow.store.manifest, "
        "nbflow.store.events; "
        f"h = Home({str(tmp_path)!r}); h.objects.put_bytes(b'x'); "
        "heavy = {'fsspec', 'pandas', 'pyarrow', 'duckdb', 'numpy', 'cloudpickle'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
