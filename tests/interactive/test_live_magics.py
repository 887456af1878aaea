"""The live magics in-process, in IPython's test shell: %%step, %%branch, %nbflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbbuild import make_notebook

from nbflow.kernel.namespace import Namespace


@pytest.fixture(scope="module")
def shell() -> Any:
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    ip.run_cell("%load_ext nbflow")
    return ip


@pytest.fixture
def ip(shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The shell with a clean namespace, a fresh nbflow home and no notebook of its own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBFLOW_HOME", str(tmp_path / ".nbflow"))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("NBFLOW_RUN", raising=False)
    shell.reset()
    shell.nbflow_session.ran.clear()
    yield shell
    for view in shell.nbflow_session.runs:
        view.wait(60)
    shell.nbflow_session.runs.clear()


def run(ip: Any, source: str) -> Any:
    return ip.run_cell(source, store_history=True)


def usage_error(result: Any) -> str:
    from IPython.core.error import UsageError

    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    return str(result.error_in_exec)


def test_step_runs_like_a_plain_cell(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(ip, "n = 3")
    result = run(ip, "%%step load\ndata = list(range(n))\nprint('loaded')\nlen(data)")
    assert result.success and result.result == 3  # the last expression is the cell's value
    assert ip.user_ns["data"] == [0, 1, 2]
    out = capsys.readouterr().out
    assert "loaded" in out and "Out[" in out
    assert ip.nbflow_session.ran["load"].body.startswith("data = list(range(n))")


def test_step_error_fails_the_cell_with_the_cells_line_number(
        ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(ip, "%%step boom\nx = 1\ny = x / 0")
    assert not result.success and isinstance(result.error_in_exec, ZeroDivisionError)
    out = capsys.readouterr().out
    assert "----> 3 y = x / 0" in out  # line 3 of the cell, counting the magic line
    assert out.count("ZeroDivisionError") == 2  # shown once (header and last line)


def test_branch_binds_the_list_a_join_sees_and_leaks_nothing(ip: Any) -> None:
    run(ip, "grid = [1, 2, 3]\nbase = 10")
    result = run(ip, "%%branch sweep --foreach grid --as k\nvalue = k * base\n_private = 1")
    assert result.success
    sweep = ip.user_ns["sweep"]
    assert all(isinstance(t, Namespace) for t in sweep)
    assert [t.value for t in sweep] == [10, 20, 30] and [t.k for t in sweep] == [1, 2, 3]
    assert sorted(sweep[0]) == ["k", "value"]  # private names are not part of the namespace
    assert "value" not in ip.user_ns and "k" not in ip.user_ns  # nothing leaks
    run(ip, "%%branch again --foreach sweep --as t\ndouble = t.value * 2")  # chained map
    assert [t.double for t in ip.user_ns["again"]] == [20, 40, 60]


def test_branch_default_loop_variable_and_failing_element(
        ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(ip, "items = ['a', 'bb', 'ccc']")
    assert run(ip, "%%branch sizes --foreach items\nsize = len(item)").success
    assert [t.size for t in ip.user_ns["sizes"]] == [1, 2, 3]
    result = run(ip, "%%branch check --foreach items\nassert len(item) < 3, item")
    assert isinstance(result.error_in_exec, AssertionError)
    assert "%%branch check: task 2 (item = 'ccc') failed" in capsys.readouterr().err
    assert "check" not in ip.user_ns


@pytest.mark.parametrize(("cell", "expected"), [
    ("%%step\nx = 1", "missing the step name"),
    ("%%step load --frob\nx = 1", "unknown option --frob"),
    ("%%step 2load\nx = 1", "not a valid Python identifier"),
    ("%%branch sweep\nx = 1", "missing --foreach"),
    ("%%branch sweep --foreach nothing_here\nx = 1", "names nothing defined yet"),
    ("%%step bad_syntax\nx = (", "bad_syntax"),
])
def test_magic_line_errors_are_one_short_message(ip: Any, cell: str, expected: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    message = usage_error(run(ip, cell))
    assert expected in message
    assert "Traceback" not in capsys.readouterr().out


def test_magic_line_is_not_variable_expanded(ip: Any) -> None:
    run(ip, "name = 'other'")
    assert run(ip, "%%step {name}\nx = 1").success is False  # `{name}` is not an identifier


def test_nbflow_line_magic_help_and_unknown_command(ip: Any,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert run(ip, "%nbflow").success
    assert "%nbflow run" in capsys.readouterr().out
    assert "unknown command 'frob'" in usage_error(run(ip, "%nbflow frob"))
    assert "unknown option --bad" in usage_error(run(ip, "%nbflow history --bad"))


def test_run_needs_a_notebook_when_the_kernel_cannot_tell(ip: Any) -> None:
    message = usage_error(run(ip, "%nbflow run"))
    assert "which notebook?" in message and "%nbflow run my_notebook.ipynb" in message
    assert "No such option" in usage_error(run(ip, "%nbflow run x.ipynb --bogus"))


def _pipeline(tmp_path: Path) -> Path:
    return make_notebook([
        "%load_ext nbflow",
        ("n = 3\ngrid = [1, 2]", ["parameters"]),
        "%%step load\ndata = list(range(n))",
        "%%branch sweep --foreach grid --as k\nvalue = k * sum(data)",
        "%%step report\nbest = max(t.value for t in sweep)",
    ], tmp_path / "live.ipynb")


def test_run_from_the_kernel_uses_jpy_session_name(ip: Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from nbflow.client.objects import Run

    notebook = _pipeline(tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))  # what jupyter_server sets
    result = run(ip, "%nbflow run -p n 4 --tag live")
    assert result.success
    view = ip.nbflow_session.runs[-1]
    assert view.wait(120), "the run did not finish"
    assert view.status == "succeeded" and view.pathspec == "live/1"
    assert view.states() == {"load": "succeeded", "sweep": "succeeded", "report": "succeeded"}
    finished = Run("live/1")
    assert finished.params["n"] == 4 and finished.tags == ["live"]
    assert finished.data.best == 2 * 6


def test_run_warns_when_the_saved_file_is_older_than_cells_run(
        ip: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notebook = _pipeline(tmp_path)
    run(ip, "n = 3")
    run(ip, "%%step load\ndata = list(range(n * 2))  # edited, not saved")
    assert run(ip, f"%nbflow run {notebook} --wait").success
    out = capsys.readouterr().out
    assert "older than cells this kernel ran: %%step load (cell 3)" in out
    assert "save the notebook" in out
    assert ip.nbflow_session.runs[-1].status == "succeeded"


def test_run_is_skipped_inside_a_headless_task(ip: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NBFLOW_RUN", "flow/1")
    assert run(ip, f"%nbflow run {_pipeline(tmp_path)}").success
    assert "skipped inside the headless task of flow/1" in capsys.readouterr().out
    assert not ip.nbflow_session.runs


def test_checkout_loads_a_failed_tasks_inputs(ip: Any, tmp_path: Path, nbflow,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    notebook = make_notebook([
        "import math\n%load_ext nbflow",
        ("grid = [1, 4]\nscale = 2", ["parameters"]),
        "%%step load\ndata = [1, 2, 3]",
        "%%branch sweep --foreach grid --as k\nroot = math.sqrt(k) * scale\nassert k < 3",
    ], tmp_path / "debugme.ipynb")
    assert nbflow("execute", str(notebook)).returncode == 1
    result = run(ip, "%nbflow checkout debugme/1/sweep/1")
    assert result.success
    assert ip.user_ns["k"] == 4 and ip.user_ns["scale"] == 2 and ip.user_ns["grid"] == [1, 4]
    report = capsys.readouterr().out
    assert "checked out debugme/1/sweep/1 (failed)" in report
    assert "math" in report and "run the setup cells" in report
    run(ip, "%nbflow checkout debugme/1/load --outputs")
    assert ip.user_ns["data"] == [1, 2, 3]
    assert "no step 'nope'" in usage_error(run(ip, "%nbflow checkout debugme/1/nope"))
    assert "does not exist" in usage_error(run(ip, "%nbflow checkout debugme/9/load"))


def test_snapshot_line_magic_is_accepted_live(ip: Any, tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("a b")
    result = run(ip, "%nbflow snapshot vocab.txt\nx = 1")
    assert result.success and ip.user_ns["x"] == 1
    message = usage_error(run(ip, "%nbflow snapshot nothing/*.csv"))
    assert "%nbflow snapshot: nothing/*.csv matches no file" in message
    assert "GLOB" in usage_error(run(ip, "%nbflow snapshot"))
