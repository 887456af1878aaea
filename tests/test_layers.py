"""The dependency rules hold: what each layer may import, checked on the source and live.

Statically: no module outside ``cli/`` imports ``nbflow.cli``; ``interactive/`` reaches
widgets only through the public ``nbflow.widgets``; widgets read through ``nbflow.client``
(never ``store``, ``run`` or ``kernel``). Live: ``nbflow show`` loads neither the
scheduler nor DuckDB.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from nbbuild import make_notebook
from nbtest import ROOT

PACKAGE = ROOT / "nbflow"


def imports_of(path: Path) -> list[str]:
    """Every nbflow module ``path`` imports, at any depth of the file (lazy ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name == "nbflow" or name.startswith("nbflow.")]


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def offending(folder: str, allowed: object) -> list[str]:
    assert callable(allowed)
    return [f"{path.relative_to(ROOT)} imports {name}"
            for path in sorted((PACKAGE / folder).rglob("*.py"))
            for name in imports_of(path) if not allowed(name)]


@pytest.mark.parametrize("folder", ["notebook", "graph", "run", "kernel", "store", "client",
                                    "interactive", "widgets"])
def test_nothing_below_the_cli_imports_it(folder: str) -> None:
    assert offending(folder, lambda name: not within(name, "nbflow.cli", "nbflow.server")) == []


def test_interactive_uses_only_the_public_widgets() -> None:
    assert offending("interactive", lambda name: not name.startswith("nbflow.widgets.")) == []


def test_widgets_read_through_the_client_only() -> None:
    below = ("nbflow.store", "nbflow.run", "nbflow.kernel", "nbflow.notebook", "nbflow.graph")
    assert offending("widgets", lambda name: not within(name, *below)) == []


def test_the_rule_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from nbflow.cli.execute import execute\n")
    assert imports_of(bad) == ["nbflow.cli.execute"]


def _heavy_modules_loaded(tmp_path: Path, args: list[str], watched: tuple[str, ...]) -> tuple[str, list[str]]:
    """Run ``nbflow ARGS`` in a fresh interpreter: its output, and which of ``watched`` it loaded."""
    probe = ("import sys\nfrom nbflow.cli.main import cli\n"
             f"try:\n    cli({args!r})\nexcept SystemExit as exc:\n"
             "    assert not exc.code, exc.code\n"
             f"print('LOADED', *[m for m in {watched!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=tmp_path, check=True)
    *output, loaded = done.stdout.strip().splitlines()
    return "\n".join(output), loaded.split()[1:]


def test_show_loads_neither_the_scheduler_nor_duckdb(tmp_path: Path) -> None:
    nb = make_notebook(["import math", "%%step a\nx = 1", "%%step b\ny = x + 1"],
                       tmp_path / "nb.ipynb")
    output, loaded = _heavy_modules_loaded(tmp_path, ["show", str(nb)], (
        "duckdb", "nbflow.run.scheduler", "nbflow.run.driver", "nbflow.store.catalog",
        "papermill"))
    assert "b" in output  # the DAG was printed
    assert loaded == []


def test_why_without_a_catalog_loads_neither_the_planner_nor_duckdb(tmp_path: Path) -> None:
    nb = make_notebook(["import math", "%%step a\nx = 1", "%%step b\ny = x + 1"],
                       tmp_path / "nb.ipynb")
    (tmp_path / "home").mkdir()  # a home where nothing has run yet
    output, loaded = _heavy_modules_loaded(
        tmp_path, ["why", str(nb), "--home", str(tmp_path / "home")],
        ("duckdb", "_duckdb", "nbflow.run.plan", "nbflow.store.catalog"))
    assert "nothing has run with the home" in output
    assert loaded == []
