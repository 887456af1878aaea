"""Warnings worth reading, a cached setup-defined foreach, and task times that say what
they mean."""

from __future__ import annotations

from pathlib import Path

from nbbuild import make_notebook
from nbtest import query


def parallel(read: bool) -> list[object]:
    return [
        "import os",
        "%%step a\nxs = 1",
        "%%step knn\nmodel = xs\nfig = 'knn'",
        "%%step svm\nmodel = xs + 1\nfig = 'svm'",
        "%%step choose\n" + ("best = model" if read else "best = xs"),
    ]


def test_parallel_outputs_warn_only_when_a_later_step_reads_them(
        tmp_path: Path, nbflow) -> None:
    nb = make_notebook(parallel(read=True), tmp_path / "par.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 0, done.stderr
    [warning] = [line for line in done.stderr.splitlines() if "may run in parallel" in line]
    assert "both output 'model' and" in warning  # not 'fig': nobody reads it
    assert "'model' is read by step 'choose' (cell 5)" in warning
    quiet = make_notebook(parallel(read=False), tmp_path / "quiet.ipynb")
    done = nbflow("execute", str(quiet))
    assert done.returncode == 0, done.stderr
    assert "may run in parallel" not in done.stderr


SETUP_FOREACH = [
    "import os\ngrid = [1, 2, 3]",
    "%%branch sweep --foreach grid --as g\nsq = g * g",
    "%%step total\ns = sum(t.sq for t in sweep)",
]


def test_a_cached_rerun_of_a_setup_foreach_starts_no_kernel(
        tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(SETUP_FOREACH, tmp_path / "sf.ipynb")
    first = nbflow("execute", str(nb))
    assert first.returncode == 0, first.stderr
    assert "started a kernel to run the setup cells for the elements of --foreach grid" \
        in first.stderr
    second = nbflow("execute", str(nb))
    assert second.returncode == 0, second.stderr
    assert "reused without a kernel: 4 cached" in second.stderr
    assert "started" not in second.stderr
    assert not (home / "runs" / "sf" / "2" / "sweep" / "split").exists()
    make_notebook(["import os\ngrid = [1, 2, 3, 4]", *SETUP_FOREACH[1:]], nb)
    third = nbflow("execute", str(nb))  # the setup changed: list them again
    assert third.returncode == 0, third.stderr
    assert "for the elements of --foreach grid" in third.stderr
    from nbflow.client.objects import Run

    assert Run("sf/3", home=str(home)).data.s == 30


def test_task_times_agree_between_catalog_terminal_and_runs(
        tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(["import time", "%%step a\nx = 1", "%%step b\ntime.sleep(0.3)\ny = x"],
                       tmp_path / "t.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 0, done.stderr
    rows = query(home, "SELECT step, queued_at, started_at, ended_at, duration_s FROM tasks "
                       "WHERE run_id = 1 ORDER BY step")
    for step, queued, started, ended, duration in rows:
        assert queued <= started <= ended, step
        assert abs((ended - started).total_seconds() - duration) < 0.002, step
        [line] = [ln for ln in done.stderr.splitlines() if f"t/1/{step}/0 succeeded" in ln]
        assert f"ran {duration:6.2f}s" in line
    assert rows[1][4] >= 0.3  # the sleep is execution
    comments = dict(query(home, "SELECT column_name, comment FROM duckdb_columns() "
                                "WHERE table_name = 'tasks'"))
    assert comments["queued_at"].startswith("When the task was ready")
    assert "ended_at - started_at" in comments["duration_s"]
    again = nbflow("execute", str(nb))
    assert again.returncode == 0, again.stderr
    listing = nbflow("runs")
    assert listing.returncode == 0, listing.stderr
    header, *lines = listing.stdout.splitlines()
    assert header.split()[:6] == ["run", "status", "started_utc", "wall_s", "exec_s", "tasks"]
    total = query(home, "SELECT round(sum(duration_s), 1) FROM tasks WHERE run_id = 1")[0][0]
    first = next(line for line in lines if line.split()[0] == "t/1")
    assert float(first.split()[5]) == total
    cached = next(line for line in lines if line.split()[0] == "t/2")
    assert float(cached.split()[5]) == 0.0  # cached tasks executed nothing
