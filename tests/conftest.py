"""Shared fixtures: a fresh home per test and the real CLI entry point."""

from __future__ import annotations

import subprocess
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
