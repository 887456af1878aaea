"""A notebook file (or an in-memory nbformat node) -> :class:`NotebookSpec`.

Plain code cells before the first step are setup, the cell tagged
``parameters`` defines the run parameters, ``%%step``/``%%branch`` cells are
steps, and plain code cells after the first step are scratch (skipped headless).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow.errors import NotebookError
from nbflow.ids import FlowName
from nbflow.notebook.magics import magic_kind, parse_magic_line
from nbflow.notebook.names import analyze, imported_names
from nbflow.notebook.parameters_cell import parse_parameters
from nbflow.notebook.spec import NotebookSpec, Parameter, SetupCell, StepSpec

PARAMETERS_TAG = "parameters"


@dataclass(frozen=True)
class _StepCell:
    cell: int
    magic_line: str
    body: str
    line_offset: int  # cell line of the body's line 1, minus one


@dataclass
class _Cells:
    setup: list[SetupCell] = field(default_factory=list)
    steps: list[_StepCell] = field(default_factory=list)
    scratch: list[int] = field(default_factory=list)
    projection: list[dict[str, Any]] = field(default_factory=list)


def read_notebook(path: str | os.PathLike[str]) -> NotebookSpec:
    """Read and analyse an ``.ipynb`` file."""
    from nbflow.notebook import ipynb

    where = str(path)
    try:
        nb = ipynb.read(where)
    except FileNotFoundError:
        raise NotebookError(
            f"no such notebook: {where}", notebook=where, hint="check the path and the file name"
        ) from None
    except Exception as exc:  # json and nbformat raise several unrelated types for a bad file
        raise NotebookError(
            f"cannot read {where} as a Jupyter notebook: {exc}",
            notebook=where,
            hint="open it in JupyterLab and save it again, or check that it is a .ipynb file",
        ) from None
    return spec_from_notebook(nb, where)


def spec_from_notebook(nb: Mapping[str, Any], path: str) -> NotebookSpec:
    """Analyse an nbformat v4 notebook (a ``NotebookNode`` or a plain dict)."""
    cells = _classify(nb.get("cells", []), path)
    parameters = _parameters(cells.setup, path)
    modules = _modules(cells)
    setup_outputs, setup_reads = _analyze_setup(cells.setup, modules, path)
    environment = setup_outputs | {p.name for p in parameters}
    steps = tuple(_step_spec(c, modules, environment, path) for c in cells.steps)
    return NotebookSpec(
        path=path,
        flow=FlowName(Path(path).stem),
        kernel_name=_kernel_name(nb),
        setup=tuple(cells.setup),
        parameters=tuple(parameters),
        steps=steps,
        setup_outputs=frozenset(setup_outputs),
        setup_inputs=frozenset(setup_reads & {p.name for p in parameters}),
        content_hash=_content_hash(cells.projection),
        scratch_cells=tuple(cells.scratch),
    )


def _classify(raw_cells: Iterable[Mapping[str, Any]], path: str) -> _Cells:
    cells = _Cells()
    for number, raw in enumerate(raw_cells, start=1):
        if raw.get("cell_type") != "code":
            continue
        source = _source(raw)
        tags = list(raw.get("metadata", {}).get("tags", []))
        cells.projection.append({"source": source, "tags": sorted(tags)})
        is_parameters = PARAMETERS_TAG in tags
        step = _step_cell(number, source, path)
        _check_parameters_position(number, is_parameters, step, cells, path)
        if step is not None:
            cells.steps.append(step)
        elif not source.strip():
            continue  # an empty cell changes nothing, headless or not
        elif cells.steps:
            cells.scratch.append(number)
        else:
            cells.setup.append(SetupCell(number, source, is_parameters=is_parameters))
    return cells


def _source(raw: Mapping[str, Any]) -> str:
    source = raw.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _step_cell(number: int, source: str, path: str) -> _StepCell | None:
    lines = source.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and magic_kind(lines[first]):
        return _StepCell(number, lines[first], "\n".join(lines[first + 1 :]), first + 1)
    for i, line in enumerate(lines):
        if magic_kind(line):
            raise NotebookError(
                f"line {i + 1} is a {line.strip().split()[0]} line, but it is not the first line",
                cell=number,
                notebook=path,
                hint="a cell magic must open the cell: move it to the top of the cell",
                line=i + 1,
            )
    return None


def _check_parameters_position(
    number: int, is_parameters: bool, step: _StepCell | None, cells: _Cells, path: str
) -> None:
    if not is_parameters:
        return
    if step is not None:
        raise NotebookError(
            "the cell tagged 'parameters' is a step cell",
            cell=number,
            notebook=path,
            hint="put the parameters in their own plain cell above the first step",
        )
    if cells.steps:
        raise NotebookError(
            f"the cell tagged 'parameters' comes after the first step (cell {cells.steps[0].cell})",
            cell=number,
            notebook=path,
            hint="move the parameters cell above the first %%step/%%branch cell",
        )
    earlier = [c.cell for c in cells.setup if c.is_parameters]
    if earlier:
        raise NotebookError(
            f"cells {earlier[0]} and {number} are both tagged 'parameters'",
            cell=number,
            notebook=path,
            hint="merge them into one parameters cell (papermill uses only the first)",
        )


def _parameters(setup: list[SetupCell], path: str) -> list[Parameter]:
    for cell in setup:
        if cell.is_parameters:
            return parse_parameters(cell.source, cell=cell.cell, notebook=path)
    return []


def _modules(cells: _Cells) -> frozenset[str]:
    sources = [c.source for c in cells.setup] + [c.body for c in cells.steps]
    return frozenset().union(*(imported_names(s) for s in sources))


def _analyze_setup(
    setup: list[SetupCell], modules: frozenset[str], path: str
) -> tuple[set[str], set[str]]:
    outputs: set[str] = set()
    reads: set[str] = set()
    for cell in setup:
        if cell.is_parameters:
            continue
        info = analyze(cell.source, modules=modules, cell=cell.cell, notebook=path)
        outputs |= info.outputs
        reads |= info.inputs
    return outputs, reads


def _step_spec(
    cell: _StepCell, modules: frozenset[str], environment: set[str], path: str
) -> StepSpec:
    magic = parse_magic_line(cell.magic_line, cell=cell.cell, notebook=path)
    info = analyze(
        cell.body,
        modules=modules,
        environment=environment,
        cell=cell.cell,
        step=magic.name,
        notebook=path,
        line_offset=cell.line_offset,
    )
    inputs, mutated = set(info.inputs), set(info.mutated)
    body_inputs = frozenset(inputs - {magic.as_}) if magic.kind == "branch" else None
    if magic.kind == "branch" and magic.foreach:
        # the loop variable is bound by nbflow in each task, not read from upstream
        inputs = (inputs - {magic.as_}) | {magic.foreach}
        mutated.discard(magic.as_)
    return StepSpec(
        name=magic.name,
        kind=magic.kind,
        cell=cell.cell,
        source=cell.body,
        magic=magic,
        outputs=info.outputs,
        inputs=frozenset(inputs),
        body_inputs=body_inputs,
        mutated=frozenset(mutated),
    )


def _kernel_name(nb: Mapping[str, Any]) -> str:
    kernelspec = nb.get("metadata", {}).get("kernelspec", {}) or {}
    return str(kernelspec.get("name") or "python3")


def _content_hash(projection: list[dict[str, Any]]) -> str:
    text = json.dumps({"cells": projection}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
