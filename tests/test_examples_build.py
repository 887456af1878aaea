"""The committed example notebooks are exactly what ``example_notebooks/_build.py`` generates."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "example_notebooks"


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_notebooks_build", EXAMPLES / "_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()


@pytest.mark.parametrize("stem", sorted(build.NOTEBOOKS))
def test_committed_notebook_matches_build_script(stem: str) -> None:
    committed = (EXAMPLES / f"{stem}.ipynb").read_text()
    assert committed == build.render(stem), (
        f"example_notebooks/{stem}.ipynb differs from what _build.py generates: "
        "edit _build.py and run `python example_notebooks/_build.py`"
    )


@pytest.mark.parametrize("stem", sorted(build.NOTEBOOKS))
def test_notebook_is_valid_with_python3_kernel(stem: str) -> None:
    nb = nbformat.read(EXAMPLES / f"{stem}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_no_stray_notebooks() -> None:
    on_disk = {p.stem for p in EXAMPLES.glob("*.ipynb")}
    assert on_disk == set(build.NOTEBOOKS), "every example notebook comes from _build.py"
