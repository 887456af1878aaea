"""``nbflow execute`` through the real CLI: real kernels, a real catalog file, real artifacts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbbuild import make_notebook
from nbtest import query, run_nbflow

PIPELINE = [
    "import math\n%load_ext nbflow",
    ("n = 3\nscale = 2.0\nlabel = 'x'\nflags = {'a': 1}", ["parameters"]),
    "%%step start\nbase = 10\nitems = list(range(n))\nsame_a = [1, 2, 3]\nprint('start says hi')",
    "%%step twin\nsame_b = [1, 2, 3]",
    "%%branch work --foreach items --as i\nout = base + i * scale",
    "%%step join\ntotal = sum(t.out for t in work)\norder = [t.i for t in work]\n"
    "seen_base = base\nprint('total', total)",
]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One run of PIPELINE shared by the tests that only read its results."""
    tmp = tmp_path_factory.mktemp("pipeline")
    nb = make_notebook(PIPELINE, tmp / "pipeline.ipynb")
    home = tmp / ".nbflow"
    out = tmp / "executed.ipynb"
    done = run_nbflow("execute", str(nb), "--max-workers", "2", "--output", str(out),
                      home=home, cwd=tmp)
    assert done.returncode == 0, done.stderr
    return {"home": home, "stderr": done.stderr, "output": out, "tmp": tmp}


def test_pipeline_succeeds_and_records_every_task(pipeline_run: dict[str, object]) -> None:
    home = pipeline_run["home"]
    assert isinstance(home, Path)
    runs = query(home, "SELECT flow, run_id, status, ended_at IS NOT NULL FROM runs")
    assert runs == [("pipeline", 1, "succeeded", True)]
    tasks = query(home, "SELECT step, task_index, status FROM tasks ORDER BY step, task_index")
    assert tasks == [
        ("join", 0, "succeeded"), ("start", 0, "succeeded"), ("twin", 0, "succeeded"),
        ("work", 0, "succeeded"), ("work", 1, "succeeded"), ("work", 2, "succeeded"),
    ]
    params = dict(query(home, "SELECT name, value FROM params"))
    assert {k: json.loads(v) for k, v in params.items()} == {
        "n": 3, "scale": 2.0, "label": "x", "flags": {"a": 1}}


def test_foreach_results_arrive_in_order_and_join_sees_pre_branch_names(
    pipeline_run: dict[str, object],
) -> None:
    from nbflow.client.objects import Run

    run = Run("pipeline/1", home=str(pipeline_run["home"]))
    join = run["join"].task.data
    assert join.order == [0, 1, 2]
    assert join.total == 10 + 12 + 14
    assert join.seen_base == 10
    elements = [t.foreach_element for t in run["work"].tasks()]
    assert [json.loads(e) for e in elements] == ["0", "1", "2"]


def test_progress_lines_name_run_step_task_and_pid(pipeline_run: dict[str, object]) -> None:
    stderr = str(pipeline_run["stderr"])
    assert "pipeline/1/start/0 started" in stderr
    assert "pid " in stderr
    assert "pipeline/1/work: fanning out into 3 task(s)" in stderr
    assert "run pipeline/1 succeeded" in stderr


def test_identical_artifacts_are_stored_once(pipeline_run: dict[str, object]) -> None:
    home = pipeline_run["home"]
    assert isinstance(home, Path)
    rows = query(home, "SELECT name, hash FROM artifacts WHERE name IN ('same_a', 'same_b')")
    hashes = {name: h for name, h in rows}
    assert hashes["same_a"] == hashes["same_b"]
    h = hashes["same_a"]
    assert len(list((home / "objects").glob(f"{h[:2]}/*{h[2:]}*"))) == 1
    all_hashes = {r[0] for r in query(home, "SELECT DISTINCT hash FROM artifacts WHERE persisted")}
    stored = {p.parent.name + p.name for p in (home / "objects").glob("*/*")}
    assert all_hashes <= stored


def test_executed_notebook_has_each_step_outputs(pipeline_run: dict[str, object]) -> None:
    out = pipeline_run["output"]
    assert isinstance(out, Path)
    nb = nbformat.read(out, as_version=4)
    texts = ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in nb.cells]
    assert "start says hi" in texts[2]
    assert "total 36.0" in texts[5]
    assert "work/0" in texts[4] and "work/2" in texts[4]
    kept = Path(str(pipeline_run["home"])) / "runs/pipeline/1/notebook.ipynb"
    assert nbformat.read(kept, as_version=4).cells[2].outputs


def test_reading_commands(pipeline_run: dict[str, object]) -> None:
    home = pipeline_run["home"]
    assert isinstance(home, Path)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_nbflow(*args, home=home, cwd=home.parent, timeout=60)

    runs = cli("runs")
    assert runs.returncode == 0 and "pipeline/1" in runs.stdout and "succeeded" in runs.stdout
    logs = cli("logs", "pipeline/1/start/0")
    assert logs.returncode == 0 and "start says hi" in logs.stdout
    dump = cli("dump", "pipeline/1/join/0")
    assert dump.returncode == 0 and "total" in dump.stdout and "36.0" in dump.stdout
    value = cli("dump", "pipeline/1/join", "order")
    assert value.stdout.strip() == "[0, 1, 2]"
    missing = cli("dump", "pipeline/7")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_parallel_steps_overlap_in_time(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([
        "import time",
        "%%step a\ntime.sleep(1.5)\nx = 1",
        "%%step b\ntime.sleep(1.5)\ny = 2",
        "%%step c\nz = x + y",
    ], tmp_path / "par.ipynb")
    done = nbflow("execute", str(nb), "--max-workers", "2")
    assert done.returncode == 0, done.stderr
    rows = dict((s, (st, en)) for s, st, en in query(
        home, "SELECT step, started_at, ended_at FROM tasks WHERE step IN ('a', 'b')"))
    (a_start, a_end), (b_start, b_end) = rows["a"], rows["b"]
    assert max(a_start, b_start) < min(a_end, b_end), rows
    c_start = query(home, "SELECT started_at FROM tasks WHERE step = 'c'")[0][0]
    assert c_start >= max(a_end, b_end)


def test_foreach_over_a_setup_defined_list(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([
        "letters = ['a', 'b', 'c']\nsuffix = '!'",
        "%%branch shout --foreach letters --as letter\nloud = letter.upper() + suffix",
        "%%step join\nwords = [t.loud for t in shout]",
    ], tmp_path / "setupfe.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 0, done.stderr
    from nbflow.client.objects import Run

    assert Run("setupfe/1", home=str(home)).data.words == ["A!", "B!", "C!"]
    again = nbflow("execute", str(nb))  # the elements are found again (one setup-only kernel)
    assert again.returncode == 0, again.stderr
    assert "reused without a kernel: 4 cached" in again.stderr


def test_show_prints_the_dag_in_three_formats(tmp_path: Path, nbflow) -> None:
    nb = make_notebook(PIPELINE, tmp_path / "pipeline.ipynb")
    text = nbflow("show", str(nb))
    assert text.returncode == 0, text.stderr
    assert "work" in text.stdout and "--foreach items" in text.stdout
    graph = json.loads(nbflow("show", str(nb), "--format", "json").stdout)
    edges = {tuple(e) for e in graph["edges"]}  # [parent, child] pairs
    assert ("start", "work") in edges and ("work", "join") in edges
    dot = nbflow("show", str(nb), "--format", "dot").stdout
    assert dot.lstrip().startswith("digraph") and '"start" -> "work"' in dot
