"""A headless %%branch over a step that was recorded by a live kernel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbbuild import make_notebook
from nbtest import query, run_nbflow

CELLS = [
    "import os\n%load_ext nbflow",
    "%%step start\nitems = [2, 3, 4]",
    "%%branch work --foreach items --as i\nsq = i * i",
    "%%step total\ns = sum(t.sq for t in work)",
]


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from IPython.testing.globalipapp import get_ipython, start_ipython

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBFLOW_HOME", str(tmp_path / ".nbflow"))
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "lb.ipynb"))
    monkeypatch.delenv("NBFLOW_RUN", raising=False)
    ip = start_ipython() or get_ipython()
    ip.run_cell("%load_ext nbflow")
    ip.reset()
    yield ip
    ip.nbflow_session.record = True


def test_branch_over_a_live_recorded_step(live: Any, tmp_path: Path) -> None:
    notebook = make_notebook(CELLS, tmp_path / "lb.ipynb")
    for source in CELLS[:2]:  # only the producer runs live
        assert live.run_cell(source).success
    home = tmp_path / ".nbflow"
    done = run_nbflow("execute", str(notebook), home=home, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = query(home, "SELECT step, status, cached_from FROM tasks WHERE run_id = 2 "
                       "ORDER BY step, task_index")
    assert rows[0] == ("start", "cached", "lb/1/start/0")
    assert [r[1] for r in rows if r[0] == "work"] == ["succeeded"] * 3
    from nbflow.client.objects import Run

    assert Run("lb/2", home=str(home)).data.s == 29
