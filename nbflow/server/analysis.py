"""The analyse call: a notebook's current (unsaved) cells -> steps, edges, errors, freshness.

The same code as the CLI does the work: ``nbflow.notebook`` reads the cells, ``nbflow.graph``
builds and validates the DAG (``nbflow show``), and ``nbflow.run.why`` says which steps
would run again (``nbflow why``, no kernel started). A problem in one cell does not blank
the picture: that cell is set aside and the rest is analysed, so the panel shows every
error with its cell next to the steps that are fine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from nbflow.errors import NbflowError, NotebookError, ParameterError
from nbflow.graph.build import Dag, build_dag
from nbflow.graph.checks import validate
from nbflow.graph.resolve import exports, resolve_all
from nbflow.notebook.reader import spec_from_notebook
from nbflow.notebook.spec import NotebookSpec, Parameter
from nbflow.store.home import Home

# A notebook with more broken cells than this is reported as it stands.
_MAX_SET_ASIDE = 50


def analyze_cells(
    path: str,
    cells: Sequence[Mapping[str, Any]],
    *,
    metadata: Mapping[str, Any] | None = None,
    home: Home | None = None,
    params: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The analysis of ``cells`` as the lab panel draws it (see docs/LAB_API.md).

    ``home``: where earlier runs are recorded (for freshness; ``None`` skips it).
    ``params``: values typed in the run form (strings, coerced like ``-p``)."""
    ids = [_cell_id(c) for c in cells]
    spec, errors = _read_spec(path, cells, metadata or {})
    dag, dag_errors = _dag(spec)
    errors += dag_errors
    steps = [_step_json(dag, s, ids) for s in dag.steps]
    if home is not None and not errors:
        _add_freshness(dag, steps, home, params or {}, errors)
    return {
        "flow": spec.flow,
        "steps": steps,
        "edges": [list(edge) for edge in dict.fromkeys(dag.edges)],
        "errors": [_error_json(e, ids) for e in errors],
        "warnings": [_warning_json(w, dag) for w in dag.warnings],
        "parameters": [_parameter_json(p, cells) for p in spec.parameters],
    }


def _cell_id(cell: Mapping[str, Any]) -> str | None:
    value = cell.get("id")
    return str(value) if value else None


def _read_spec(
    path: str, cells: Sequence[Mapping[str, Any]], metadata: Mapping[str, Any]
) -> tuple[NotebookSpec, list[NbflowError]]:
    """The spec of every cell that reads, and the errors of those that do not."""
    current = [dict(c) for c in cells]
    errors: list[NbflowError] = []
    while True:
        try:
            return spec_from_notebook({"cells": current, "metadata": metadata}, path), errors
        except NotebookError as exc:
            errors.append(exc)
            if exc.cell is None or not 1 <= exc.cell <= len(current) or len(errors) > _MAX_SET_ASIDE:
                empty = spec_from_notebook({"cells": [], "metadata": metadata}, path)
                return empty, errors
            # set the cell aside: a markdown cell is neither setup nor a step
            current[exc.cell - 1] = {"cell_type": "markdown", "source": "", "metadata": {}}


def _dag(spec: NotebookSpec) -> tuple[Dag, list[NbflowError]]:
    dag = build_dag(spec, check=False)
    resolved = resolve_all(spec)
    return dag, list(validate(spec, resolved, dag.parents))


def _step_json(dag: Dag, step: Any, ids: list[str | None]) -> dict[str, Any]:
    index = step.cell - 1
    return {
        "name": step.name,
        "kind": step.kind,
        "index": index,
        "cell": step.cell,
        "cell_id": ids[index] if 0 <= index < len(ids) else None,
        "upstream": list(dict.fromkeys(dag.parents.get(step.name, ()))),
        "inputs": sorted(step.inputs),
        "outputs": sorted(exports(step)),
        "foreach": step.magic.foreach,
        "fresh": None,
        "reason": None,
        "notes": [],
    }


def _add_freshness(dag: Dag, steps: list[dict[str, Any]], home: Home,
                   params: Mapping[str, str], errors: list[NbflowError]) -> None:
    """``fresh``: True when ``nbflow execute`` would reuse every task of the step now."""
    from nbflow.notebook.params import resolve_parameters

    try:
        values = resolve_parameters(dag.spec.parameters, cli=dict(params), env=os.environ,
                                    notebook=dag.spec.path)
    except ParameterError as exc:
        for step in steps:
            step["notes"].append(f"freshness unknown: {exc.message.splitlines()[0]}")
        return
    if not os.path.exists(home.catalog_path):
        for step in steps:  # reading never creates a home
            step.update(fresh=False, reason="not run before")
        return
    from nbflow.run.why import explain_notebook

    by_name = {s["name"]: s for s in steps}
    for verdict in explain_notebook(dag, values, home):
        step = by_name[verdict.step]
        if verdict.action == "reused":
            step.update(fresh=True, reason=None)
            step["notes"] = [f"reused from {', '.join(verdict.reused_from)}"]
        elif verdict.action == "runs":
            step.update(fresh=False, reason=_reason(verdict.reasons))
            step["notes"] = list(verdict.reasons)
        else:
            step["notes"] = list(verdict.reasons)
        if verdict.tasks > 1:
            step["tasks"] = verdict.tasks


def _reason(reasons: list[str]) -> str | None:
    """The first reason of ``nbflow why``, without its "(since RUN)" tail."""
    for reason in reasons:
        if " of " in reason and reason.split(" ", 1)[0].isdigit():
            continue  # "2 of 5 tasks run": a count, not a cause
        head = reason.split(" (since ", 1)[0]
        if head.startswith("it has never run"):
            return "not run before"
        return head
    return None


def _error_json(error: NbflowError, ids: list[str | None]) -> dict[str, Any]:
    cell = error.cell
    return {
        "message": error.message.splitlines()[0] if error.message else str(error),
        "hint": error.hint,
        "cell": cell,
        "index": cell - 1 if cell is not None else None,
        "cell_id": ids[cell - 1] if cell is not None and 0 < cell <= len(ids) else None,
        "step": error.step,
    }


def _warning_json(text: str, dag: Dag) -> dict[str, Any]:
    """Warnings name their cells in the text ("cells 3 and 5: ..."); point at the first."""
    import re

    match = re.match(r"cells? (\d+)", text)
    cell = int(match.group(1)) if match else None
    step = next((s.name for s in dag.steps if s.cell == cell), None)
    return {"message": text, "cell": cell, "index": cell - 1 if cell else None, "step": step}


def _parameter_json(param: Parameter, cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    import json

    default = None if param.required else param.default
    try:
        json.dumps(default)
    except (TypeError, ValueError):
        default = repr(default)  # a tuple or set default: shown as text, typed by `-p`
    return {
        "name": param.name,
        "default": default,
        "type": param.type,
        "required": param.required,
        "source": "" if param.required else _literal_text(param, cells),
    }


def _literal_text(param: Parameter, cells: Sequence[Mapping[str, Any]]) -> str:
    """The default as written in the parameters cell (``0.2``, ``[0.1, 1.0]``)."""
    import ast

    source = cells[param.cell - 1].get("source", "") if 0 < param.cell <= len(cells) else ""
    text = "".join(source) if isinstance(source, list) else str(source)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return repr(param.default)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == param.name for t in targets):
            value = getattr(node, "value", None)
            if value is not None:
                return ast.unparse(value)
    return repr(param.default)
