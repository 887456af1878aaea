"""Shared fixtures: a fresh home per test, the real CLI entry point, catalog queries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_notebooks"


def nbflow_command() -> list[str]:
    """The installed console script when present (what a user runs), else ``python -m nbflow``."""
    script = shutil.which("nbflow", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    return [script] if script else [sys.executable, "-m", "nbflow"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / ".nbflow"


@pytest.fixture
def nbflow(home: Path, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``nbflow`` CLI with ``--home`` pointing at this test's home."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 240,
            check: bool | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "NBFLOW_HOME": str(home), **(env or {})}
        done = subprocess.run(
            [*nbflow_command(), *args], capture_output=True, text=True, env=full_env,
            cwd=tmp_path, timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"nbflow {' '.join(args)} exited {done.returncode}\n"
                                 f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        return done

    return run


def query(home: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    """Read the test's catalog through nbflow's own Catalog (takes the lock like any reader)."""
    from nbflow.store.catalog import Catalog

    return Catalog(home / "catalog.duckdb").execute_read(sql, list(params))
