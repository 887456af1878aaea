"""Helpers shared by tests across packages: the real CLI command and catalog queries.

Imported as ``from nbtest import ...`` (several conftest.py files exist, so helpers
must not live in one of them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_notebooks"


def nbflow_command() -> list[str]:
    """The installed console script when present (what a user runs), else ``python -m nbflow``."""
    path = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    script = shutil.which("nbflow", path=path)
    return [script] if script else [sys.executable, "-m", "nbflow"]


def run_nbflow(*args: str, home: Path, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the real CLI against ``home`` (as ``$NBFLOW_HOME``) from ``cwd``."""
    full_env = {**os.environ, "NBFLOW_HOME": str(home), **(env or {})}
    return subprocess.run([*nbflow_command(), *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def query(home: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    """Read the test's catalog through nbflow's own Catalog (takes the lock like any reader)."""
    from nbflow.store.catalog import Catalog

    return Catalog(home / "catalog.duckdb").execute_read(sql, list(params))


def wait_for_workers(address: str, n: int, timeout: float = 120) -> None:
    """Wait until the Dask scheduler at ``address`` has ``n`` workers."""
    from distributed import Client

    deadline = time.time() + timeout
    while True:
        try:
            with Client(address, timeout=10) as client:
                client.wait_for_workers(n, timeout=max(1.0, deadline - time.time()))
                return
        except (OSError, TimeoutError):
            if time.time() > deadline:
                raise
