"""Widgets built from a real catalog (runs made by the real CLI), their contents asserted."""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

import pytest
from nbbuild import make_notebook
from nbtest import nbflow_command, run_nbflow

from nbflow.widgets.dag_svg import COLOURS, Node, columns, dag_svg

CELLS = [
    "import pandas as pd\nimport time\n%load_ext nbflow",
    ("n = 3\ngrid = [1, 2]\nfail = False\npause = 0.0", ["parameters"]),
    "%%step load\ntime.sleep(pause)\nframe = pd.DataFrame({'a': range(n), 'b': list('xyz')[:n]})\n"
    "print('loaded', len(frame))",
    "%%branch sweep --foreach grid --as k\nvalue = k * len(frame)",
    "%%step report\nassert not fail, 'asked to fail'\nbest = float(max(t.value for t in sweep))",
]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three runs of one notebook: n=3, n=3 again (all cached), and a failing one."""
    root = tmp_path_factory.mktemp("widgets")
    notebook = make_notebook(CELLS, root / "demo.ipynb")
    home = root / ".nbflow"

    def execute(*args: str) -> subprocess.CompletedProcess[str]:
        return run_nbflow("execute", str(notebook), *args, home=home, cwd=root)

    assert execute("--tag", "first").returncode == 0
    assert execute().returncode == 0
    assert execute("-p", "n", "2", "-p", "fail", "true").returncode == 1
    return {"root": root, "home": home, "notebook": notebook, "execute": execute}


def test_dag_svg_draws_states_durations_and_branch_progress() -> None:
    nodes = [Node("load", (), "succeeded", 1.84), Node("sweep", ("load",), "running", 2.0,
                                                     "branch", 3, 5),
             Node("report", ("sweep",), "failed", 0.5), Node("skip", ("report",), "skipped")]
    svg = dag_svg(nodes, title="demo/1")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert columns(nodes) == {"load": 0, "sweep": 1, "report": 2, "skip": 3}
    for node in nodes:
        assert f'data-step="{node.name}" data-state="{node.state}"' in svg
    assert "1.8 s" in svg and "3/5 · 2.0 s" in svg
    assert COLOURS["failed"][1] in svg and "<animate" in svg  # running pulses
    assert svg.count("marker-end") == 3  # one arrow per edge
    assert "&lt;b&gt;" in dag_svg([Node("<b>")])  # names are escaped


def test_history_lists_runs_with_status_params_metrics_tags(catalog: dict[str, Any]) -> None:
    from nbflow.widgets import RunHistory

    history = RunHistory(home=str(catalog["home"]))
    try:
        labels = [label for label, _ in history.table.options]
        assert [value for _, value in history.table.options] == ["demo/3", "demo/2", "demo/1"]
        assert labels[0].startswith("✗ demo/3") and "failed" in labels[0]
        assert labels[2].startswith("✓ demo/1") and "#first" in labels[2]
        assert "n=3" in labels[1] and "best=6.0" in labels[1]  # parameters and metrics
        assert "3 run(s)" in history.summary.value and not history.polling
        history.status.value = "failed"
        assert [v for _, v in history.table.options] == ["demo/3"]
        history.status.value = "any status"
        history.search.value = "#first"
        assert [v for _, v in history.table.options] == ["demo/1"]
    finally:
        history.close()


def test_selecting_a_run_shows_dag_steps_artifacts_logs_notebook(catalog: dict[str, Any]) -> None:
    from nbflow.widgets import RunHistory
    from nbflow.widgets.runview import RunView

    history = RunHistory("demo", home=str(catalog["home"]))
    try:
        history.select("demo/1")
        view = history.detail.children[0]
        assert isinstance(view, RunView)
        assert "demo/1" in view.header.value and 'data-state="succeeded"' in view.header.value
        assert 'data-step="sweep" data-state="succeeded"' in view.dag.value
        assert "2/2" in view.dag.value  # the branch's tasks
        assert re.search(r"<b>load</b>.*succeeded.*1/1", view.steps.value)
        assert list(view.task_picker.options) == ["load/0", "sweep/0", "sweep/1", "report/0"]
        view.task_picker.value = "load/0"
        assert "frame" in view.artifacts.value and "DataFrame" in view.artifacts.value
        assert "<table" in view.preview.value and "shape (3, 2)" in view.preview.value
        assert ">x<" in view.preview.value  # the DataFrame's head, not just its repr
        assert "loaded 3" in view.task_log.value  # the task's stdout
        view.tabs.selected_index = 3
        assert "frame = pd.DataFrame" in view.notebook.value
    finally:
        history.close()


def test_failed_run_shows_the_traceback(catalog: dict[str, Any]) -> None:
    from nbflow.widgets import RunHistory

    history = RunHistory("demo", home=str(catalog["home"]))
    try:
        history.select("demo/3")
        view = history.detail.children[0]
        assert 'data-step="report" data-state="failed"' in view.dag.value
        assert "AssertionError" in view.steps.value and "asked to fail" in view.steps.value
        view.task_picker.value = "report/0"
        assert "asked to fail" in view.task_log.value
    finally:
        history.close()


def test_two_runs_compare_params_metrics_and_cached_steps(catalog: dict[str, Any]) -> None:
    from nbflow.widgets import RunHistory
    from nbflow.widgets.compare import CompareView

    history = RunHistory("demo", home=str(catalog["home"]))
    try:
        history.select("demo/1", "demo/2")
        compare = history.detail.children[0]
        assert isinstance(compare, CompareView)
        assert "0 of 4 differ" in compare.params.value
        steps = {s.name: (s.a, s.b) for s in compare.comparison.steps}
        assert steps["load"] == ("ran", "cached from demo/1")
        assert steps["sweep"] == ("ran", "cached from demo/1")
        history.select("demo/1", "demo/3")
        compare = history.detail.children[0]
        changed = {d.name for d in compare.comparison.params if d.changed}
        assert changed == {"n", "fail"}
        assert 'class="nbflow-changed"><td>n</td><td>3</td><td>2</td>' in compare.params.value
        assert "best" in compare.metrics.value and "—" in compare.metrics.value
    finally:
        history.close()


def test_history_polls_while_a_run_is_in_progress(catalog: dict[str, Any]) -> None:
    from nbflow.widgets import RunHistory

    run = subprocess.Popen([*nbflow_command(), "execute", str(catalog["notebook"]), "--home",
                            str(catalog["home"]), "-p", "pause", "3", "-q"],
                           cwd=catalog["root"], stderr=subprocess.DEVNULL)
    history = RunHistory("demo", home=str(catalog["home"]), interval=0.2)
    try:
        assert history.interval == 1.0  # never faster than once a second
        deadline = time.monotonic() + 60
        while not history.rows or history.rows[0].pathspec != "demo/4":
            assert time.monotonic() < deadline, "the new run never appeared"
            time.sleep(0.3)
            history.refresh()
        assert history.rows[0].status == "running" and history.polling
        history.select("demo/4")
        assert run.wait(120) == 0
        deadline = time.monotonic() + 10
        while history.polling or history.rows[0].status == "running":
            assert time.monotonic() < deadline, "the history did not notice the run ended"
            time.sleep(0.2)
        assert history.table.options[0][0].startswith("✓ demo/4")
        deadline = time.monotonic() + 10  # the selected run's view follows it on its own poll
        while not re.search(r'data-step="report" data-state="(succeeded|cached)"',
                            history.detail.children[0].dag.value):
            assert time.monotonic() < deadline, history.detail.children[0].dag.value
            time.sleep(0.2)
        dag = history.detail.children[0].dag.value
        assert re.search(r'data-step="report" data-state="(succeeded|cached)"', dag)
        assert 'data-step="load" data-state="succeeded"' in dag  # `pause` changed: load ran
    finally:
        history.close()
        run.kill()


def test_run_progress_follows_a_real_run(catalog: dict[str, Any]) -> None:
    from nbflow.run.driver import execute, prepare
    from nbflow.run.options import RunOptions
    from nbflow.widgets import RunProgress

    spec, dag = prepare(str(catalog["notebook"]))
    view = RunProgress(str(catalog["notebook"]), home=str(catalog["home"]))
    options = RunOptions(params={"n": 3, "grid": [1, 2, 3], "fail": True, "pause": 0.0},
                         home=str(catalog["home"]), quiet=True)
    view.start(lambda v: execute(spec, dag, options, observers=(v.events,)))
    assert view.wait(120)
    assert view.status == "failed"
    assert view.states() == {"load": "cached", "sweep": "succeeded", "report": "failed"}
    rows = {row.children[0].value.split("<b>")[1].split("</b>")[0]: row for row in
            view.rows.children}
    assert rows["sweep"].children[1].value == 3 and rows["sweep"].children[2].value == "3/3 tasks"
    assert "asked to fail" in view.error.value and "report/0 failed" in view.error.value
    assert 'data-step="report" data-state="failed"' in view.dag.value
    rows["report"].children[4].click()  # the step's log button
    assert view.log_picker.value == "report/0" and "asked to fail" in view.task_log.value
    view.close()
