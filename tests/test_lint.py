"""The code stays as strict as on day one: ruff and mypy pass on the whole package."""

from __future__ import annotations

import subprocess
import sys

from nbtest import ROOT


def test_ruff_is_clean() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "nbflow", "tests", "benchmarks",
                           "example_notebooks"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_is_clean() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", "nbflow"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_nbflow_stays_light() -> None:
    probe = ("import sys, nbflow, nbflow.cli.main; "
             "print(' '.join(m for m in ('pandas', 'duckdb', 'papermill', 'ipywidgets', "
             "'pyarrow', 'nbformat') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == ""
