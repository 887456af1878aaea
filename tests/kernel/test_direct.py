"""The direct engine: a forked child runs the cells in a fresh IPython shell, via papermill."""

from __future__ import annotations

import os

import pytest
from kernel_helpers import notebook, text_of
from papermill.exceptions import PapermillExecutionError

from nbflow.kernel.direct import DirectTask, execute_direct
from nbflow.kernel.execute import CellTimeoutError, KernelDiedError, execute_notebook
from nbflow.kernel.launcher import KernelLauncher


def _run(launcher: KernelLauncher, *sources: str, timeout: float | None = None):  # type: ignore[no-untyped-def]
    nb = notebook(*sources)
    task = launcher.start_direct("python3", nb)
    assert isinstance(task, DirectTask)
    try:
        return execute_direct(nb, task, timeout=timeout), task
    finally:
        task.shutdown()


def test_outputs_are_kept_as_a_kernel_keeps_them(launcher: KernelLauncher) -> None:
    sources = ("x = 41", "import sys\nprint('out')\nprint('err', file=sys.stderr)\nx + 1",
               "from IPython.display import display, HTML\ndisplay(HTML('<b>hi</b>'))",
               "%load_ext nbflow")
    direct, _ = _run(launcher, *sources)
    kernel = launcher.start("python3")
    try:
        spawned = execute_notebook(notebook(*sources), kernel, cwd=kernel.cwd)
    finally:
        kernel.shutdown()
    for ours, theirs in zip(direct.cells, spawned.cells, strict=True):
        assert ours.execution_count == theirs.execution_count
        assert [(o.output_type, o.get("name"), o.get("text"), o.get("data"))
                for o in ours.outputs] == [
            (o.output_type, o.get("name"), o.get("text"), o.get("data")) for o in theirs.outputs]
        assert ours.metadata.papermill.status == "completed"
    assert text_of(direct.cells[1]) == "out\nerr\n42"


def test_every_task_is_a_fresh_process_with_a_fresh_namespace(launcher: KernelLauncher) -> None:
    first, task1 = _run(launcher, "import os\nleak = 1\nos.getpid()")
    second, task2 = _run(launcher, "'leak' in globals(), __import__('os').getpid()")
    assert task1.pid != task2.pid != os.getpid()
    assert text_of(second.cells[0]) == f"(False, {task2.pid})"
    env, _ = _run(launcher, "import os; os.environ['NBFLOW_TEST'], os.getcwd()")
    assert text_of(env.cells[0]) == repr(("launcher", launcher.cwd))


def test_a_failing_cell_stops_the_task_like_papermill(launcher: KernelLauncher) -> None:
    nb = notebook("a = 1", "1/0", "never = 1")
    task = launcher.start_direct("python3", nb)
    with pytest.raises(PapermillExecutionError) as caught:
        execute_direct(nb, task)
    task.shutdown()
    assert caught.value.cell_index == 1 and caught.value.ename == "ZeroDivisionError"
    executed = caught.value.nb  # type: ignore[attr-defined]
    assert executed.cells[1].outputs[0].output_type == "error"
    assert executed.cells[2].outputs == []


def test_a_hung_cell_is_killed_at_its_timeout(launcher: KernelLauncher) -> None:
    with pytest.raises(CellTimeoutError) as caught:
        _run(launcher, "x = 1", "import time; time.sleep(60)", timeout=1)
    assert caught.value.cell == 2 and caught.value.timeout == 1


def test_a_dying_process_is_reported(launcher: KernelLauncher) -> None:
    with pytest.raises(KernelDiedError) as caught:
        _run(launcher, "import os; os._exit(7)")
    assert caught.value.exit_code == 7 and caught.value.cell == 1


def test_kernels_still_start_after_direct_tasks(launcher: KernelLauncher) -> None:
    _run(launcher, "1")
    kernel = launcher.start("python3")
    try:
        executed = execute_notebook(notebook("get_ipython().__class__.__name__"), kernel,
                                    cwd=kernel.cwd)
    finally:
        kernel.shutdown()
    assert text_of(executed.cells[0]) == "'ZMQInteractiveShell'"


def test_the_kernel_engine_can_be_chosen(launcher: KernelLauncher,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_TASK_ENGINE", "kernel")
    assert launcher.start_direct("python3", notebook("1")) is None
