"""Real kernels, one launcher per module: its fork server imports numpy and pandas once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nbflow.kernel.launcher import KernelLauncher

PRELOAD = ("numpy", "pandas")


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelLauncher]:
    cwd = tmp_path_factory.mktemp("kernel-cwd")
    with KernelLauncher(cwd=str(cwd), env={"NBFLOW_TEST": "launcher"}, preload=PRELOAD) as k:
        yield k


@pytest.fixture(scope="module")
def spawn_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelLauncher]:
    cwd = tmp_path_factory.mktemp("spawn-cwd")
    with KernelLauncher(cwd=str(cwd), env={"NBFLOW_TEST": "launcher"}, mode="spawn") as k:
        yield k


@pytest.fixture
def kernelspec_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private JUPYTER_PATH for kernelspecs a test writes."""
    root = tmp_path / "jupyter"
    (root / "kernels").mkdir(parents=True)
    monkeypatch.setenv("JUPYTER_PATH", str(root))
    return root / "kernels"

