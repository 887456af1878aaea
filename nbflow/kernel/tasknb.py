"""The notebook one task runs: setup cells, injected parameters, load, step, persist.

Each generated cell carries ``metadata.nbflow = {"role": ..., "cell": N}`` so an
error in any of them can be reported against the user's own cell number.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from nbflow.notebook.spec import NotebookSpec, StepSpec

ROLES = ("setup", "parameters", "load", "step", "persist")


def build_task_notebook(
    spec: NotebookSpec,
    step: StepSpec,
    params: dict[str, Any],
    load_plan: dict[str, Any],
    persist_plan: dict[str, Any],
    *,
    include_step: bool = True,
    include_setup: bool = True,
) -> Any:
    """Return an ``nbformat`` notebook node for one task of ``step``.

    Without ``include_step`` the notebook only runs the setup and persists what the
    plan names: how a branch over a setup-defined name learns its elements. Without
    ``include_setup`` it starts at loading the inputs: the task is forked from a
    template that already ran :func:`setup_cells`."""
    from nbformat import from_dict

    cells = setup_cells(spec, params) if include_setup else []
    cells.append(_cell(_call("load_inputs", load_plan), "load", step.cell))
    if include_step:
        cells.append(_cell(step.source, "step", step.cell))
    cells.append(_cell(_call("persist_outputs", persist_plan), "persist", step.cell))
    nb = from_dict({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})
    nb.metadata["kernelspec"] = {"name": step.magic.kernel or spec.kernel_name,
                                 "display_name": step.magic.kernel or spec.kernel_name,
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["nbflow"] = {"flow": spec.flow, "step": step.name, "notebook": spec.path}
    return nb


def setup_cells(spec: NotebookSpec, params: dict[str, Any]) -> list[dict[str, Any]]:
    """What every task runs before its own cells: setup cells and injected parameters."""
    cells = []
    for setup in spec.setup:
        if setup.is_parameters:
            cells.append(_cell(parameters_source(params), "parameters", setup.cell))
        else:
            cells.append(_cell(setup.source, "setup", setup.cell))
    if not any(s.is_parameters for s in spec.setup) and params:
        cells.append(_cell(parameters_source(params), "parameters", None))
    return cells


def _cell(source: str, role: str, cell: int | None) -> dict[str, Any]:
    """A code cell as a plain dict: nbformat's constructors validate every cell against
    the JSON schema, which costs more than the rest of building a task notebook."""
    tags = ["injected-parameters"] if role == "parameters" else [f"nbflow-{role}"]
    return {"cell_type": "code", "id": f"nbflow-{role}-{cell}", "execution_count": None,
            "source": source, "outputs": [],
            "metadata": {"tags": tags, "nbflow": {"role": role, "cell": cell}}}


def _call(function: str, plan: dict[str, Any]) -> str:
    text = json.dumps(plan, separators=(",", ":"))
    return (
        "import nbflow.kernel.runtime as _nbflow_runtime\n"
        f"_nbflow_runtime.{function}(globals(), {text!r})"
    )


def parameters_source(params: dict[str, Any]) -> str:
    """Python assignments for the parameter values, like papermill's injected cell."""
    lines = ["# Parameters injected by nbflow"]
    lines += [f"{name} = {_literal(value)}" for name, value in params.items()]
    return "\n".join(lines)


def _literal(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, (dict, list)):
        return f"__import__('json').loads({json.dumps(value)!r})"
    return repr(value)


def cell_role(cell: Any) -> tuple[str, int | None]:
    """(role, user's cell number) of a cell of a task notebook."""
    meta = cell.get("metadata", {}).get("nbflow", {})
    return meta.get("role", "step"), meta.get("cell")


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def error_traceback(nb: Any) -> str | None:
    """The traceback of the failing cell of an executed task notebook (a dict or a
    notebook node), as plain text; None if no cell failed."""
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return _ANSI.sub("", "\n".join(output.get("traceback", [])))
    return None
