"""The run's executed notebook: the user's notebook with each step cell's outputs, as papermill leaves it."""

from __future__ import annotations

import copy
from typing import Any

from nbflow.kernel.tasknb import cell_role
from nbflow.run.executor import TaskOutcome


def assemble(source_nb: dict[str, Any], outcomes: list[TaskOutcome], home: Any = None,
             setup: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Fill a copy of ``source_nb`` with outputs from the tasks' executed notebooks.

    A branch cell gets every task's outputs in index order, each under a one-line
    header. Setup cells get the outputs of their one run in the template the tasks
    forked from (``setup``), else of the first task that ran them. Of a retried
    task only the last attempt counts; a reused task contributes its origin's outputs.
    """
    nb = copy.deepcopy(source_nb)
    cells = nb["cells"]
    for cell in cells:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    by_cell: dict[int, list[tuple[int, str, list[Any]]]] = {}
    setup_done: set[int] = set()
    for cell in setup or ():
        role, number = cell_role(cell)
        if role == "setup" and number is not None:
            cells[number - 1]["outputs"] = list(cell.get("outputs", []))
            setup_done.add(number)
    last = {o.job.label: o for o in sorted(outcomes, key=lambda o: o.job.attempt)}
    for outcome in sorted(last.values(), key=lambda o: (o.job.step.cell, o.job.index)):
        task_nb = outcome.executed
        if task_nb is None and outcome.origin and home is not None:
            task_nb = _origin_notebook(home, outcome.origin)
        if task_nb is None:
            continue
        for task_cell in task_nb["cells"]:
            role, number = cell_role(task_cell)
            if number is None:
                continue
            if role == "step":
                header = outcome.job.label if outcome.job.step.kind == "branch" else ""
                if outcome.job.element is not None:
                    header += f" ({outcome.job.step.magic.as_}={outcome.job.element})"
                by_cell.setdefault(number, []).append(
                    (outcome.job.index, header, list(task_cell.get("outputs", [])))
                )
            elif role == "setup" and number not in setup_done:
                cells[number - 1]["outputs"] = list(task_cell.get("outputs", []))
                setup_done.add(number)
    for number, parts in by_cell.items():
        outputs: list[Any] = []
        for _index, header, cell_outputs in sorted(parts, key=lambda p: p[0]):
            if header:
                outputs.append({"output_type": "stream", "name": "stdout",
                                "text": f"── {header} ──\n"})
            outputs.extend(cell_outputs)
        cells[number - 1]["outputs"] = outputs
    nb.setdefault("metadata", {}).setdefault("nbflow", {})
    return nb


def _origin_notebook(home: Any, origin: str) -> Any:
    from nbflow.notebook import ipynb

    flow, run, step, index = origin.split("/")
    try:
        text = home.read_text(f"{home.task_prefix(flow, run, step, index)}/notebook.ipynb")
    except Exception:  # the origin's log is gone: the cell stays without outputs
        return None
    return ipynb.reads(text)
