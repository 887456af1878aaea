"""One task identity across both worlds: live %%step runs are reused by `nbflow execute`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbbuild import make_notebook
from nbtest import query, run_nbflow

CELLS = [
    "import json\n%load_ext nbflow",
    ("scale = 3", ["parameters"]),
    "%%step load\nbase = [1, 2, 3]",
    "%%step train\nmodel = {'weights': [b * scale for b in base]}",
    "%%step report\nsummary = json.dumps(model)",
]


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Path]]:
    """IPython's test shell acting as the kernel of notebook.ipynb (as JupyterLab would)."""
    from IPython.testing.globalipapp import get_ipython, start_ipython

    notebook = make_notebook(CELLS, tmp_path / "live.ipynb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBFLOW_HOME", str(tmp_path / ".nbflow"))
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    monkeypatch.delenv("NBFLOW_RUN", raising=False)
    ip = start_ipython() or get_ipython()  # one test shell per process
    ip.run_cell("%load_ext nbflow")
    ip.reset()
    yield ip, notebook
    ip.nbflow_session.record = True


def run_cells(ip: Any, cells: list[object]) -> None:
    for cell in cells:
        source = cell[0] if isinstance(cell, tuple) else cell
        result = ip.run_cell(source)
        assert result.success, result.error_in_exec


def test_live_steps_are_reused_headless(live: tuple[Any, Path], tmp_path: Path) -> None:
    ip, notebook = live
    run_cells(ip, CELLS[:4])  # setup, parameters, load, train — not report
    home = tmp_path / ".nbflow"
    assert query(home, "SELECT run_id, status FROM runs") == [(1, "succeeded")]
    assert query(home, "SELECT tag FROM tags") == [("interactive",)]
    done = run_nbflow("execute", str(notebook), home=home, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = dict((step, (status, origin)) for step, status, origin in query(
        home, "SELECT step, status, cached_from FROM tasks WHERE run_id = 2"))
    assert rows["load"] == ("cached", "live/1/load/0")
    assert rows["train"] == ("cached", "live/1/train/0")
    assert rows["report"][0] == "succeeded"  # never ran live: it runs headless
    from nbflow.client.objects import Run

    assert Run("live/2", home=str(home)).data.summary == '{"weights": [3, 6, 9]}'


def test_an_unsaved_edit_is_not_reused(live: tuple[Any, Path], tmp_path: Path) -> None:
    ip, notebook = live
    run_cells(ip, CELLS[:3])
    # train as edited in the browser but not saved: the file still has the original code
    run_cells(ip, ["%%step train\nmodel = {'weights': [b * scale + 1 for b in base]}"])
    assert ip.user_ns["model"] == {"weights": [4, 7, 10]}
    home = tmp_path / ".nbflow"
    done = run_nbflow("execute", str(notebook), home=home, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status = dict(query(home, "SELECT step, status FROM tasks WHERE run_id = 2"))
    assert status == {"load": "cached", "train": "succeeded", "report": "succeeded"}
    from nbflow.client.objects import Run

    assert Run("live/2", home=str(home)).data.model == {"weights": [3, 6, 9]}  # the saved code


def test_another_parameter_value_is_not_reused(live: tuple[Any, Path], tmp_path: Path) -> None:
    ip, notebook = live
    run_cells(ip, CELLS[:2])
    ip.run_cell("scale = 5")  # the live value differs from the notebook's default
    run_cells(ip, CELLS[2:4])
    home = tmp_path / ".nbflow"
    done = run_nbflow("execute", str(notebook), home=home, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status = dict(query(home, "SELECT step, status FROM tasks WHERE run_id = 2"))
    # load does not read scale: reused; train read scale = 5, not the notebook's 3
    assert status == {"load": "cached", "train": "succeeded", "report": "succeeded"}


def test_recording_can_be_switched_off(live: tuple[Any, Path], tmp_path: Path) -> None:
    ip, _notebook = live
    ip.run_cell("%nbflow record off")
    run_cells(ip, CELLS[:3])
    assert not (tmp_path / ".nbflow" / "catalog.duckdb").exists()
