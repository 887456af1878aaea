"""Run a notebook on a kernel from :class:`~nbflow.kernel.launcher.KernelLauncher`.

The only module of nbflow that imports papermill, and only when a notebook runs
(``import papermill`` costs ≈0.6 s).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from nbflow.errors import NbflowError
from nbflow.kernel._manager import exit_code, run_silently

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from nbflow.kernel.launcher import StartedKernel


# papermill's I/O module imports these for remote notebook paths when they are installed
# (≈80 MB of the driver's memory and ≈0.5 s); nbflow hands papermill notebook objects only.
_REMOTE_IO_MODULES = ("boto3", "pyarrow", "gcsfs", "azure", "github")
_IMPORT_LOCK = threading.Lock()


def import_papermill() -> Any:
    """``import papermill`` without its remote-storage backends (see ``_REMOTE_IO_MODULES``).

    They are hidden only while papermill imports: a later ``import pyarrow`` works.
    Thread-safe: another thread never gets a half-imported papermill."""
    with _IMPORT_LOCK:
        return _import_papermill()


def _import_papermill() -> Any:
    import sys

    if "papermill" in sys.modules:
        return sys.modules["papermill"]
    hidden = [name for name in _REMOTE_IO_MODULES if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes its import fail
    try:
        import papermill
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return papermill


class CellTimeoutError(NbflowError, TimeoutError):
    """A cell ran longer than its timeout; the kernel was killed (not just interrupted).

    Fields: ``timeout`` (s), ``pid`` and ``mode`` of the killed kernel; ``cell`` is the
    1-based cell number in the executed notebook.
    """


class KernelDiedError(NbflowError):
    """The kernel process exited while a cell ran (crash, OOM kill). Field: ``exit_code``."""


def execute_notebook(
    nb: NotebookNode,
    kernel: StartedKernel,
    *,
    cwd: str,
    timeout: float | None = None,
    start_timeout: float = 60,
) -> NotebookNode:
    """Run every cell of ``nb`` on ``kernel`` through papermill; return the executed copy.

    No intermediate saves, no progress bar, no output file. A cell error raises papermill's
    ``PapermillExecutionError`` unchanged. A cell running longer than ``timeout`` seconds
    kills the kernel and raises :class:`CellTimeoutError` (a ``TimeoutError``); a kernel
    that dies mid-cell raises :class:`KernelDiedError`. The kernel stays alive otherwise:
    the caller shuts it down.

    ``cwd`` is the directory the notebook runs in. The kernel was started in the
    launcher's cwd; if they differ the kernel changes directory first. papermill's own
    ``cwd=`` is not used: it ``chdir``s the whole driver process, which races with the
    other threads of a parallel scheduler.
    """
    papermill = import_papermill()
    from nbclient.exceptions import CellTimeoutError as NbclientTimeout
    from nbclient.exceptions import DeadKernelError

    if cwd != kernel.cwd:
        run_silently(kernel.km.client(), f"import os as _o; _o.chdir({cwd!r}); del _o", 30)
        kernel.cwd = cwd
    running: dict[str, int] = {}
    cells: dict[int, Any] = {}  # the live executed cells, to return a partial notebook on error

    def track(cell: Any = None, cell_index: int = 0, **_: Any) -> None:
        running["cell"] = cell_index + 1
        cells[cell_index] = cell

    try:
        result: NotebookNode = papermill.execute_notebook(
            nb,
            None,
            km=kernel.km,
            kernel_name=kernel.kernel_name,
            request_save_on_cell_execute=False,
            progress_bar=False,
            log_output=False,
            start_timeout=start_timeout,
            execution_timeout=timeout,
            on_cell_execute=track,
        )
    except NbclientTimeout as exc:
        cell = running.get("cell")
        kernel.shutdown()
        raise _with_notebook(nb, cells, CellTimeoutError(
            f"the cell did not finish within {timeout:g} s; its kernel (pid {kernel.pid}, "
            f"{kernel.mode}) was killed",
            cell=cell, timeout=timeout, pid=kernel.pid, mode=kernel.mode,
            hint="raise the step's --timeout, or look for an endless loop or a blocked read",
        )) from exc
    except DeadKernelError as exc:
        code = exit_code(kernel.km)
        raise _with_notebook(nb, cells, KernelDiedError(
            f"the kernel (pid {kernel.pid}, {kernel.mode}) died while running a cell "
            f"(exit code {code})",
            cell=running.get("cell"), exit_code=code, pid=kernel.pid,
            hint="a negative exit code is the signal that killed it (-9: often out of memory)",
        )) from exc
    except Exception as exc:
        raise _with_notebook(nb, cells, exc) from None
    return result


def _with_notebook(nb: NotebookNode, cells: dict[int, Any], error: BaseException) -> BaseException:
    """Attach the partly executed notebook as ``error.nb`` (the task's log, with its outputs)."""
    import copy

    executed = copy.copy(nb)
    executed.cells = [cells.get(i, cell) for i, cell in enumerate(nb.cells)]
    error.nb = executed  # type: ignore[attr-defined]
    return error

