"""Shared fixtures: a fresh home per test and the real CLI entry point."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from nbtest import run_nbflow


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / ".nbflow"


@pytest.fixture
def nbflow(home: Path, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``nbflow`` CLI with ``$NBFLOW_HOME`` pointing at this test's home."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 240,
            check: bool | None = None) -> subprocess.CompletedProcess[str]:
        done = run_nbflow(*args, home=home, cwd=tmp_path, env=env, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"nbflow {' '.join(args)} exited {done.returncode}\n"
                                 f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        return done

    return run


@pytest.fixture(autouse=True)
def _close_widgets() -> object:
    """Close the widgets a test made in this process. Left to the interpreter's exit,
    each one's ``__del__`` runs after ipykernel's comm manager is gone (a test imports
    ipykernel) and prints an ignored KeyError: hundreds of lines after the summary."""
    yield
    widgets = sys.modules.get("ipywidgets")
    if widgets is not None:
        widgets.Widget.close_all()
