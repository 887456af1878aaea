"""The "direct" task engine: papermill drives a forked child that runs the cells itself.

A task through an ipykernel pays the kernel app's start (≈50 ms of CPU in a forked
child, more under load) and a ZMQ round trip per cell. The direct engine asks the fork
server for a child that already holds a fresh IPython shell (``_direct_child``), hands it
the task's cell sources, and reads each cell's outputs back from a FIFO as they finish.
It is a papermill engine (``nbflow-direct``): papermill still loads the notebook, keeps
its cell metadata and raises ``PapermillExecutionError`` for a failed cell, exactly as
with a kernel, so the executed notebook and the errors the executor sees are the same.

Every task is still its own fresh process with its own namespace. ``--kernel`` steps,
kernelspecs that cannot be forked and ``NBFLOW_TASK_ENGINE=kernel`` use a kernel.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import uuid
from typing import TYPE_CHECKING, Any

from nbflow.kernel._protocol import PROFILE_ENV, PROFILE_LABEL_ENV
from nbflow.kernel.execute import (
    CellTimeoutError,
    KernelDiedError,
    _with_notebook,
    import_papermill,
)

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from nbflow.kernel._zygote import ForkedProcess, Zygote

ENGINE_NAME = "nbflow-direct"
_REAP_TIMEOUT = 10.0


class DirectTask:
    """One forked child running one task's cells; its outputs arrive on a FIFO."""

    mode = "fork"  # a process forked from the fork server, as a forked kernel is
    fallback_reason: str | None = None

    def __init__(self, zygote: Zygote, nb: NotebookNode, *, rundir: str,
                 cwd: str, env: dict[str, str], template: str | None = None) -> None:
        self.fifo_path = os.path.join(rundir, f"{uuid.uuid4().hex[:12]}.fifo")
        os.mkfifo(self.fifo_path, 0o600)
        # Our own write end keeps the FIFO from reading as EOF before the child opens it.
        self._read = os.open(self.fifo_path, os.O_RDONLY | os.O_NONBLOCK)
        self._hold = os.open(self.fifo_path, os.O_WRONLY | os.O_NONBLOCK)
        self._buffer = b""
        cells = [c.source if c.cell_type == "code" else None for c in nb.cells]
        if env.get(PROFILE_ENV):  # name the task's profile after its step
            env = {**env, PROFILE_LABEL_ENV: str(nb.metadata.get("nbflow", {}).get("step", "task"))}
        try:
            self.process: ForkedProcess = zygote.run(
                cells=cells, fifo=self.fifo_path, env=env, cwd=cwd, template=template)
        except BaseException:
            self._close_fds()
            raise
        self.pid = self.process.pid

    def next_message(self, deadline: float | None) -> dict[str, Any] | None:
        """The child's next message; ``None`` when it exited first. Raises TimeoutError."""
        while b"\n" not in self._buffer:
            if self.process.poll() is not None and not self._readable(0):
                return None
            wait = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError
            if self._readable(wait):
                chunk = os.read(self._read, 1 << 16)
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def _readable(self, timeout: float) -> bool:
        return bool(select.select([self._read], [], [], timeout)[0])

    def shutdown(self) -> None:
        """Kill the child if it still runs, wait until the zygote reaped it, clean up."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(_REAP_TIMEOUT)
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self._read, self._hold):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.unlink(self.fifo_path)
        except OSError:
            pass


def execute_direct(nb: NotebookNode, task: DirectTask, *, timeout: float | None = None
                   ) -> NotebookNode:
    """Like :func:`nbflow.kernel.execute.execute_notebook`, on a :class:`DirectTask`.

    The steps of ``papermill.execute_notebook`` for a notebook object without output
    path, minus its two whole-notebook JSON round trips (``load_notebook_node`` serialises
    and re-parses its input; ``write_ipynb(nb, None)`` serialises the result for nothing):
    a copy, papermill's metadata, its engine, its error check."""
    import_papermill()
    from papermill.engines import papermill_engines
    from papermill.execute import (
        prepare_notebook_metadata,
        raise_for_execution_errors,
        remove_error_markers,
    )

    if ENGINE_NAME not in papermill_engines._engines:
        papermill_engines.register(ENGINE_NAME, _engine_class())
    cells: dict[int, Any] = {}
    try:
        copy = remove_error_markers(prepare_notebook_metadata(_loaded_copy(nb), None, None))
        result: NotebookNode = papermill_engines.execute_notebook_with_engine(
            ENGINE_NAME, copy, kernel_name=nb.metadata.get("kernelspec", {}).get("name"),
            input_path=None, output_path=None, progress_bar=False, log_output=False,
            task=task, live_cells=cells, execution_timeout=timeout,
        )
        raise_for_execution_errors(result, None)
    except Exception as exc:
        raise _with_notebook(nb, cells, exc) from None
    return result


def _loaded_copy(nb: NotebookNode) -> NotebookNode:
    """What papermill's ``load_notebook_node`` makes of a notebook object, by deep copy."""
    import copy

    from nbformat import from_dict
    from papermill.version import version

    loaded = copy.deepcopy(nb)
    loaded.metadata.setdefault("papermill", from_dict({
        "default_parameters": {}, "parameters": {}, "environment_variables": {},
        "version": version}))
    for cell in loaded.cells:
        cell.metadata.setdefault("tags", [])
        cell.metadata.setdefault("papermill", from_dict({}))
    return loaded


def _engine_class() -> type:
    from papermill.engines import Engine

    class DirectEngine(Engine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: Any, **kwargs: Any) -> None:
            _run_cells(nb_man, kwargs["task"], kwargs.get("execution_timeout"),
                       kwargs["live_cells"])

    return DirectEngine


def _run_cells(nb_man: Any, task: DirectTask, timeout: float | None,
               live: dict[int, Any]) -> None:
    from nbformat import from_dict

    running: int | None = None
    while True:
        deadline = None if timeout is None or running is None else time.monotonic() + timeout
        try:
            message = task.next_message(deadline)
        except TimeoutError:
            task.shutdown()
            raise CellTimeoutError(
                f"the cell did not finish within {timeout:g} s; its process (pid {task.pid}, "
                f"direct) was killed",
                cell=None if running is None else running + 1, timeout=timeout,
                pid=task.pid, mode=task.mode,
                hint="raise the step's --timeout, or look for an endless loop or a blocked read",
            ) from None
        if message is None:
            code = task.process.poll()
            raise KernelDiedError(
                f"the task's process (pid {task.pid}, direct) died while running a cell "
                f"(exit code {code})",
                cell=None if running is None else running + 1, exit_code=code, pid=task.pid,
                hint="a negative exit code is the signal that killed it (-9: often out of memory)",
            )
        op = message["op"]
        if op == "end":
            return
        index = message["index"]
        cell = nb_man.nb.cells[index]
        if op == "start":
            running = index
            live[index] = cell
            nb_man.cell_start(cell, index)
            continue
        cell.outputs = [from_dict(output) for output in message["outputs"]]
        cell.execution_count = message["execution_count"]
        failed = any(o["output_type"] == "error" for o in message["outputs"])
        if failed:
            nb_man.cell_exception(cell, cell_index=index)
        nb_man.cell_complete(cell, cell_index=index)
        running = None
