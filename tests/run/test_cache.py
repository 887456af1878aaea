"""Caching: never recompute what did not change, and say why when something runs."""

from __future__ import annotations

from pathlib import Path

from nbbuild import make_notebook
from nbtest import query


def cells(load_body: str = "base = [1, 2, 3]", train_body: str = "model = sum(base) * alpha",
          alpha: str = "2.0") -> list[object]:
    return [
        "import json",
        (f"alpha = {alpha}\nbeta = 1", ["parameters"]),
        f"%%step load\n{load_body}",
        f"%%step train\n{train_body}",
        "%%step other\nunrelated = beta + 1",
        "%%step report\nsummary = {'model': model, 'unrelated': unrelated}",
    ]


def statuses(home: Path, run_id: int) -> dict[str, tuple[str, str | None]]:
    rows = query(home, "SELECT step, status, kernel_mode FROM tasks WHERE run_id = ?", [run_id])
    return {step: (status, mode) for step, status, mode in rows}


def test_unchanged_rerun_starts_no_kernel(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(cells(), tmp_path / "c.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    second = nbflow("execute", str(nb))
    assert second.returncode == 0, second.stderr
    assert "started" not in second.stderr  # no task started a kernel
    assert "reused without a kernel: 4 cached" in second.stderr
    assert statuses(home, 2) == {s: ("cached", None) for s in ("load", "train", "other", "report")}
    origins = dict(query(home, "SELECT step, cached_from FROM tasks WHERE run_id = 2"))
    assert origins["train"] == "c/1/train/0"
    from nbflow.client.objects import Run

    assert Run("c/2", home=str(home)).data.summary == {"model": 12.0, "unrelated": 2}


def test_formatting_only_edit_stays_cached(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(cells(), tmp_path / "c.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    make_notebook(cells(train_body="# a comment\n\nmodel   =   sum( base )*alpha  # why\n"),
                  nb)
    assert nbflow("execute", str(nb)).returncode == 0
    assert {s for s, (st, _) in statuses(home, 2).items() if st != "cached"} == set()


def test_edit_reruns_the_step_and_its_dependents_only(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(cells(), tmp_path / "c.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    make_notebook(cells(train_body="model = sum(base) * alpha + 1"), nb)
    why = nbflow("why", str(nb))
    assert why.returncode == 0, why.stderr
    lines = {line.split()[0]: line for line in why.stdout.splitlines() if line and line[0] != " "}
    assert "reused" in lines["load"] and "reused" in lines["other"]
    assert "runs" in lines["train"] and "code changed" in why.stdout
    assert "upstream step 'train' runs" in why.stdout
    assert nbflow("execute", str(nb)).returncode == 0
    ran = {s for s, (st, _) in statuses(home, 2).items() if st == "succeeded"}
    assert ran == {"train", "report"}


def test_changed_parameter_reruns_only_its_readers(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(cells(), tmp_path / "c.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    why = nbflow("why", str(nb), "train", "-p", "beta", "5")
    assert "reused" in why.stdout  # train does not read beta
    assert nbflow("execute", str(nb), "-p", "beta", "5").returncode == 0
    ran = {s for s, (st, _) in statuses(home, 2).items() if st == "succeeded"}
    assert ran == {"other", "report"}
    why = nbflow("why", str(nb), "-p", "alpha", "3")
    assert "parameter 'alpha' changed" in why.stdout


def test_snapshot_file_change_reruns_its_step(tmp_path: Path, nbflow, home: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x\n1\n")
    nb = make_notebook([
        "import pathlib",
        "%%step read --snapshot data/*.csv\nrows = pathlib.Path('data/a.csv').read_text()",
        "%%step keep\nconst = 1",
    ], tmp_path / "snap.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    assert nbflow("execute", str(nb)).returncode == 0
    assert statuses(home, 2)["read"][0] == "cached"
    (data / "a.csv").write_text("x\n2\n")
    why = nbflow("why", str(nb), "read")
    assert "snapshot file data/a.csv changed" in why.stdout
    assert nbflow("execute", str(nb)).returncode == 0
    assert statuses(home, 3) == {"read": ("succeeded", "fork"), "keep": ("cached", None)}
    from nbflow.client.objects import Run

    assert Run("snap/3", home=str(home)).data.rows == "x\n2\n"
    # the run that read the first version keeps a copy of it
    first = Run("snap/1", home=str(home))["read"].task
    assert first.snapshots.keys() == {"data/a.csv"}
    assert first.snapshot("data/a.csv") == b"x\n1\n"


def test_no_cache_on_the_command_line_and_on_a_step(tmp_path: Path, nbflow, home: Path) -> None:
    body = cells()
    body[3] = "%%step train --no-cache\nmodel = sum(base) * alpha"
    nb = make_notebook(body, tmp_path / "c.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    assert nbflow("execute", str(nb)).returncode == 0
    assert {s for s, (st, _) in statuses(home, 2).items() if st == "succeeded"} == {"train"}
    assert nbflow("execute", str(nb), "--no-cache").returncode == 0
    assert {st for st, _ in statuses(home, 3).values()} == {"succeeded"}


def test_foreach_tasks_cache_per_element(tmp_path: Path, nbflow, home: Path) -> None:
    def nb_cells(grid: str) -> list[object]:
        return [
            "import math",
            (f"grid = {grid}", ["parameters"]),
            "%%branch sq --foreach grid --as g\nout = g * g",
            "%%step total\ns = sum(t.out for t in sq)",
        ]

    nb = make_notebook(nb_cells("[1, 2, 3]"), tmp_path / "fe.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    assert nbflow("execute", str(nb), "-p", "grid", "[1, 2, 4]").returncode == 0
    rows = query(home, "SELECT task_index, status FROM tasks WHERE run_id = 2 AND step = 'sq' "
                       "ORDER BY task_index")
    assert rows == [(0, "cached"), (1, "cached"), (2, "succeeded")]
    from nbflow.client.objects import Run

    assert Run("fe/2", home=str(home)).data.s == 1 + 4 + 16
