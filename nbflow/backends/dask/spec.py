"""The task spec: the plain data a Dask worker needs to run one nbflow task.

It crosses the wire with one importable function (``nbflow.backends.dask.worker.run_task``);
nothing else of the driver does. Its result is plain data too (:func:`outcome_dict`).
Bump ``SPEC_VERSION`` whenever a field changes meaning.
"""

from __future__ import annotations

import json
from typing import Any

SPEC_VERSION = 1
STARTED_TOPIC = "nbflow-task-started"


def task_spec(
    *,
    notebook: Any,
    kernel: str,
    home: str,
    flow: str,
    run_id: int,
    step: str,
    index: int,
    attempt: int,
    timeout: float | None,
    cwd: str,
    preload: list[str],
    key: str,
    catalog: str,
) -> dict[str, Any]:
    """One submission. ``notebook`` is the generated task notebook: setup, parameters, the
    cell that loads the inputs (their object references), the step, the persist cell."""
    from nbflow import __version__

    return {
        "spec_version": SPEC_VERSION,
        "nbflow": __version__,
        "key": key,
        "notebook": json.loads(json.dumps(notebook)),  # a plain dict, not a NotebookNode
        "kernel": kernel,
        "home": home,
        "flow": flow,
        "run_id": run_id,
        "step": step,
        "index": index,
        "attempt": attempt,
        "timeout": timeout,
        "cwd": cwd,
        "preload": list(preload),
        # The catalog path lets a step read other runs (lineage) where the workers share
        # the driver's disk; elsewhere only the home is reachable.
        "env": {"NBFLOW_HOME": home, "NBFLOW_RUN": f"{flow}/{run_id}", "NBFLOW_CATALOG": catalog},
    }


def describe_error(exc: BaseException, phase: str) -> dict[str, Any]:
    """A failure as data: what the driver's error mapping reads from an exception."""
    from nbflow.errors import NbflowError

    return {
        "phase": phase,  # "kernel" (could not start) | "task" (a cell failed) | "spec"
        "type": type(exc).__name__,
        "nbflow_error": isinstance(exc, NbflowError),
        "message": str(getattr(exc, "message", None) or exc),
        "hint": getattr(exc, "hint", None),
        "cell": getattr(exc, "cell", None) if isinstance(exc, NbflowError) else None,
        "cell_index": getattr(exc, "cell_index", None),
        "ename": getattr(exc, "ename", None),
        "evalue": getattr(exc, "evalue", None),
        "traceback": list(getattr(exc, "traceback", None) or []),
    }
