"""The Metaflow-shaped client, nbflow.sql and nbflow.compare, over a real catalog and store."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from nbbuild import make_notebook

CELLS = [
    "import pandas as pd\nimport numpy as np\nimport sys",
    ("rows = 1000\nalpha = 0.5", ["parameters"]),
    "%%step load\nframe = pd.DataFrame({'a': np.arange(rows), 'b': np.arange(rows) * alpha})\n"
    "small = {'rows': rows}\nprint('loaded', rows)\nprint('careful', file=sys.stderr)",
    "%%branch sweep --foreach grid --as g\nscore = g * alpha",
    "%%step pick\nbest = max(t.score for t in sweep)\naccuracy = best / 10",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of one notebook in a git repository (the second one dirty)."""
    from nbtest import run_nbflow

    tmp = tmp_path_factory.mktemp("client")
    cells = list(CELLS)
    cells[1] = ("rows = 1000\nalpha = 0.5\ngrid = [1, 2, 3]", ["parameters"])
    nb = make_notebook(cells, tmp / "exp.ipynb")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=tmp, check=True)
    subprocess.run([*git, "add", "exp.ipynb"], cwd=tmp, check=True)
    subprocess.run([*git, "commit", "-qm", "exp"], cwd=tmp, check=True)
    home = tmp / ".nbflow"
    for args in (["--tag", "baseline"], ["-p", "alpha", "2.0", "--tag", "tuned"]):
        if "tuned" in args:
            (tmp / "exp.ipynb").write_text((tmp / "exp.ipynb").read_text() + "\n")
        done = run_nbflow("execute", str(nb), *args, home=home, cwd=tmp)
        assert done.returncode == 0, done.stderr
    return home


def test_flow_and_run_objects(runs: Path) -> None:
    from nbflow import Flow

    flow = Flow("exp", home=str(runs))
    assert [r.id for r in flow.runs()] == [2, 1]
    assert [r.id for r in flow.runs("tuned")] == [2]
    latest = flow.latest_run
    assert latest is not None and latest.pathspec == "exp/2"
    assert flow.latest_successful_run.pathspec == "exp/2"  # type: ignore[union-attr]
    assert latest.successful and latest.finished and latest.finished_at is not None
    assert latest.params == {"rows": 1000, "alpha": 2.0, "grid": [1, 2, 3]}
    assert latest.tags == ["tuned"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=runs.parent, capture_output=True,
                          text=True).stdout.strip()
    assert flow[1].git_commit == head and flow[1].git_dirty is False
    assert latest.git_dirty is True
    assert "pandas" in latest.packages and "duckdb" in latest.packages
    assert [s.name for s in latest.steps()] == ["load", "sweep", "pick"]


def test_task_data_stdout_and_versions(runs: Path) -> None:
    from nbflow import Run

    run = Run("exp/1", home=str(runs))
    task = run["load"].task
    assert task.data.small == {"rows": 1000}
    assert list(task.data.frame.columns) == ["a", "b"] and len(task.data.frame) == 1000
    assert "loaded 1000" in task.stdout and "careful" in task.stderr
    assert task.packages and "pandas" in task.packages
    assert task.python and task.peak_memory > 0 and task.duration_s > 0
    assert [t.data.score for t in run["sweep"]] == [0.5, 1.0, 1.5]
    assert run.data.best == 1.5
    assert [ns.g for ns in run.data.sweep] == [1, 2, 3]  # a branch is a list of namespaces


def test_a_task_is_subscriptable_as_in_metaflow(runs: Path) -> None:
    from nbflow.client import Run  # the package exports what ``nbflow`` does

    task = Run("exp/1", home=str(runs))["load"].task
    assert task["small"].data == {"rows": 1000}
    assert task["small"].pathspec == "exp/1/load/0/small" and task["small"].sha
    assert "frame" in task and "nope" not in task
    assert sorted(a.id for a in task) == sorted(task.artifacts)
    with pytest.raises(KeyError, match="exp/1/load/0 has no artifact 'nope'"):
        task["nope"]


def test_data_loads_lazily(runs: Path) -> None:
    """Reading the small artifact never touches the frame's bytes."""
    from nbflow import Run

    run = Run("exp/1", home=str(runs))
    frame = run["load"].task.artifacts["frame"]
    path = runs / "objects" / frame.hash[:2] / frame.hash[2:]  # type: ignore[index]
    assert path.exists()
    moved = path.with_suffix(".away")
    path.rename(moved)
    try:
        data = run.data
        assert data.small == {"rows": 1000}
        with pytest.raises(Exception, match="does not exist|No such file|missing"):
            _ = data.frame
    finally:
        moved.rename(path)


def test_sql_over_views_artifacts_and_metrics(runs: Path) -> None:
    import nbflow

    best = nbflow.sql(
        "SELECT p.value AS alpha, m.value AS accuracy FROM metrics m JOIN params p "
        "USING (flow, run_id) WHERE m.name = 'accuracy' AND p.name = 'alpha' "
        "ORDER BY accuracy DESC LIMIT 1", home=str(runs))
    assert best.iloc[0]["alpha"] == "2.0" and best.iloc[0]["accuracy"] == pytest.approx(0.6)
    table = nbflow.sql("SELECT count(*) AS n, max(b) AS top FROM artifact('exp/2/load/0', 'frame')",
                       home=str(runs))
    assert table.iloc[0]["n"] == 1000 and table.iloc[0]["top"] == pytest.approx(999 * 2.0)
    run_level = nbflow.sql("SELECT sum(a) AS s FROM artifact('exp/1', 'frame')", home=str(runs))
    assert run_level.iloc[0]["s"] == sum(range(1000))
    counts = nbflow.sql("SELECT count(*) AS n FROM tasks", home=str(runs))
    assert counts.iloc[0]["n"] == 10


def test_compare_runs_params_and_metrics(runs: Path) -> None:
    import nbflow

    frame = nbflow.compare(["exp/1", "exp/2"], home=str(runs))
    assert list(frame.index) == ["exp/1", "exp/2"]
    assert list(frame["param.alpha"]) == [0.5, 2.0]
    assert list(frame["metric.accuracy"]) == pytest.approx([0.15, 0.6])
    assert "metric.score" not in frame.columns  # branch scores live in their namespaces


def test_missing_things_are_clear_errors(runs: Path) -> None:
    from nbflow import Run
    from nbflow.errors import PathspecError

    with pytest.raises(PathspecError, match="exp/9 does not exist"):
        Run("exp/9", home=str(runs))
    with pytest.raises(KeyError, match="no step 'nope'"):
        Run("exp/1", home=str(runs))["nope"]
    with pytest.raises(AttributeError, match="no artifact 'nope'"):
        _ = Run("exp/1", home=str(runs)).data.nope


def test_final_values_and_metrics_agree_everywhere(tmp_path: Path) -> None:
    """Each name from its last producer in cell order: a later non-numeric ``acc`` hides the
    earlier metric in run.data, compare() and the runs table alike; branch values are not
    the run's."""
    from nbtest import run_nbflow

    import nbflow
    from nbflow.client.history import list_runs

    nb = make_notebook([
        ("grid = [1, 2]", ["parameters"]),
        "%%step first\nacc = 0.5\nn = 3",
        "%%branch sweep --foreach grid --as g\nscore = g / 10",
        "%%step last\nacc = 'final'\nloss = 0.25",
    ], tmp_path / "agree.ipynb")
    home = tmp_path / ".nbflow"
    done = run_nbflow("execute", str(nb), home=home, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run = nbflow.Run("agree/1", home=str(home))
    assert run.data.acc == "final" and run.data.n == 3
    assert [t.score for t in run.data.sweep] == [0.1, 0.2]
    expected = {"n": 3.0, "loss": 0.25}
    (row,) = list_runs(str(home), flow="agree")
    assert row.metrics == expected
    frame = nbflow.compare(["agree/1"], home=str(home))
    assert {c: frame.loc["agree/1", c] for c in frame.columns if c.startswith("metric.")} == {
        f"metric.{k}": v for k, v in expected.items()}
