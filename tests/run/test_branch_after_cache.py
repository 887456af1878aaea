"""A new %%branch over a step whose task was reused: its elements come from the store."""

from __future__ import annotations

from pathlib import Path

from nbbuild import make_notebook
from nbtest import query

BEFORE = [
    "import os",
    "%%step start\nitems = [1, 2, 3]\nlabel = 'x'",
    "%%step other\nz = 1",
]
BRANCH = [
    "%%branch work --foreach items --as i\nsq = i * i",
    "%%step total\ns = sum(t.sq for t in work)",
]


def statuses(home: Path, run_id: int) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for step, status in query(home, "SELECT step, status FROM tasks WHERE run_id = ? "
                                    "ORDER BY step, task_index", [run_id]):
        found.setdefault(str(step), []).append(str(status))
    return found


def test_a_branch_added_after_a_cached_step_runs(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(BEFORE, tmp_path / "grow.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    make_notebook(BEFORE + BRANCH, nb)
    second = nbflow("execute", str(nb))
    assert second.returncode == 0, second.stderr
    assert statuses(home, 2) == {"start": ["cached"], "other": ["cached"],
                                 "work": ["succeeded"] * 3, "total": ["succeeded"]}
    from nbflow.client.objects import Run

    assert Run("grow/2", home=str(home)).data.s == 14
    third = nbflow("execute", str(nb))  # and the branch itself is cached next time
    assert third.returncode == 0, third.stderr
    assert set(s for ss in statuses(home, 3).values() for s in ss) == {"cached"}


def test_a_branch_added_after_a_run_resumes_from_its_clone(
        tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(BEFORE, tmp_path / "grow.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    make_notebook(BEFORE + BRANCH, nb)
    resumed = nbflow("execute", str(nb), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert statuses(home, 2)["start"] == ["cloned"]
    assert statuses(home, 2)["work"] == ["succeeded"] * 3


def test_a_branch_over_a_cached_non_iterable_names_its_type(
        tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(BEFORE, tmp_path / "grow.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    make_notebook([*BEFORE, "%%branch work --foreach label --as c\nu = c"], nb)
    done = nbflow("execute", str(nb))
    assert done.returncode == 1
    assert "did not produce an iterable 'label' (it is a str)" in done.stderr
    assert "Traceback" not in done.stderr
