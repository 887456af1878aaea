"""``nbflow show``: the DAG as text for people, JSON for programs, DOT for graphviz."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Any

from nbflow.errors import DagError
from nbflow.graph.build import Dag
from nbflow.graph.topo import topo_order
from nbflow.ids import StepName
from nbflow.notebook import reads
from nbflow.notebook.modules import step_modules
from nbflow.notebook.params import describe_parameter
from nbflow.notebook.spec import StepSpec


def run_order(dag: Dag) -> list[StepName]:
    """Topological order, or cell order when the graph has a cycle (unchecked DAGs)."""
    try:
        return topo_order(dag)
    except DagError:
        return [s.name for s in dag.steps]


def render_text(dag: Dag) -> str:
    spec = dag.spec
    lines = [f"{spec.flow}  ({spec.path}, kernel {spec.kernel_name})"]
    lines.append("parameters:" if spec.parameters else "parameters: none")
    lines += [f"  {describe_parameter(p)}   [cell {p.cell}]" for p in spec.parameters]
    lines.append(f"steps, in run order ({len(dag.steps)}):")
    for name in run_order(dag):
        lines += _step_text(dag, dag.step(name))
    if dag.warnings:
        lines.append("warnings:")
        lines += [f"  - {w}" for w in dag.warnings]
    return "\n".join(lines) + "\n"


def _step_text(dag: Dag, step: StepSpec) -> list[str]:
    lines = [f"  {step.name}  [{_header(step)}]"]
    lines.append(f"    after:   {', '.join(dag.parents[step.name]) or '-'}")
    groups = _inputs_by_source(dag, step)
    label = "inputs:"
    for source, names in groups.items():
        lines.append(f"    {label:<8} {source}: {', '.join(names)}")
        label = ""
    if not groups:
        lines.append("    inputs:  -")
    outputs = "the list of per-task namespaces" if step.kind == "branch" else None
    body = ", ".join(sorted(step.public_outputs)) or "-"
    if outputs:
        lines.append(f"    outputs: {step.name} ({outputs}); per task: {body}")
    else:
        lines.append(f"    outputs: {body}")
    if step.mutated:
        lines.append(f"    mutates: {', '.join(sorted(step.mutated))}")
    return lines + _reads_text(dag, step)


def _reads_text(dag: Dag, step: StepSpec) -> list[str]:
    """Files the step (or setup) reads, and reads the analysis cannot resolve."""
    found = reads.notebook_file_reads(dag.spec, step)
    paths = sorted({_template(r.path) for r in found if r.path is not None})
    lines = [f"    files:   {', '.join(paths)} (their content is in the cache key)"] if paths else []
    modules = step_modules(dag.spec, step, os.path.dirname(os.path.abspath(dag.spec.path)))
    if modules:
        lines.append(f"    modules: {', '.join(modules)} (their code is in the cache key)")
    runs = sorted({r.label for r in reads.notebook_run_reads(dag.spec, step)})
    if runs:
        lines.append(f"    reads:   {', '.join(runs)} (the run each resolves to is in the key)")
    for r in found:
        if r.path is None:
            lines.append(
                f"    unknown file: {r.call}({r.text}) in cell {r.cell}, line {r.line}: nbflow "
                "cannot tell which file this reads, so a change to the file does not rerun "
                "the step; name it with --snapshot GLOB on the step"
                + (" (or %nbflow snapshot GLOB in the setup cell)" if r.cell != step.cell
                   else ""))
    return lines


def _template(pieces: tuple[str | reads.Param, ...]) -> str:
    return "".join(p if isinstance(p, str) else "{" + p.name + "}" for p in pieces)


def _header(step: StepSpec) -> str:
    magic = step.magic
    parts = [step.kind, f"cell {step.cell}"]
    if magic.foreach:
        parts.append(f"--foreach {magic.foreach} --as {magic.as_}")
    parts += [f"--after {a}" for a in magic.after]
    if magic.no_cache:
        parts.append("--no-cache")
    if magic.kernel:
        parts.append(f"--kernel {magic.kernel}")
    if magic.retry:
        parts.append(f"--retry {magic.retry}")
    if magic.timeout is not None:
        parts.append(f"--timeout {magic.timeout:g}")
    parts += [f"--snapshot {p}" for p in magic.snapshot]
    if magic.resources:
        wanted = ",".join(f"{k}={v:g}" for k, v in magic.resources)
        parts.append(f"--resources {wanted} (Dask worker resources; ignored by --backend local)")
    return ", ".join(parts)


def _inputs_by_source(dag: Dag, step: StepSpec) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for name, binding in sorted(dag.bindings[step.name].items()):
        source = f"{binding.source} {binding.step}" if binding.step else binding.source
        groups[source].append(name)
    return dict(sorted(groups.items()))


def dag_to_dict(dag: Dag) -> dict[str, Any]:
    spec = dag.spec
    return {
        "flow": spec.flow,
        "path": spec.path,
        "kernel": spec.kernel_name,
        "content_hash": spec.content_hash,
        "parameters": [
            {
                "name": p.name,
                "type": p.type,
                "required": p.required,
                "default": None if p.required else p.default,
                "cell": p.cell,
            }
            for p in spec.parameters
        ],  # fmt: skip
        "order": run_order(dag),
        "steps": [_step_dict(dag, s) for s in dag.steps],
        "edges": [list(e) for e in dag.edges],
        "warnings": list(dag.warnings),
    }


def _step_dict(dag: Dag, step: StepSpec) -> dict[str, Any]:
    magic = step.magic
    return {
        "name": step.name,
        "kind": step.kind,
        "cell": step.cell,
        "foreach": magic.foreach,
        "as": magic.as_ if step.kind == "branch" else None,
        "after": list(magic.after),
        "parents": list(dag.parents[step.name]),
        "children": list(dag.children[step.name]),
        "inputs": {
            name: {"source": b.source, "step": b.step}
            for name, b in sorted(dag.bindings[step.name].items())
        },
        "outputs": sorted(step.outputs),
        "mutated": sorted(step.mutated),
        "options": {"no_cache": magic.no_cache, "snapshot": list(magic.snapshot),
                    "kernel": magic.kernel, "retry": magic.retry, "timeout": magic.timeout,
                    "resources": dict(magic.resources)},
    }  # fmt: skip


def render_json(dag: Dag) -> str:
    return json.dumps(dag_to_dict(dag), indent=2, default=repr)


def render_dot(dag: Dag) -> str:
    lines = [f"digraph {_quote(dag.spec.flow or 'flow')} {{", "  rankdir=TB;",
             '  node [shape=box, style=rounded, fontname="Helvetica"];']  # fmt: skip
    for step in dag.steps:
        label = f"{step.name}\\ncell {step.cell}"
        if step.kind == "branch":
            label += f"\\nforeach {step.magic.foreach}"
        shape = ", shape=box3d, style=solid" if step.kind == "branch" else ""
        lines.append(f'  {_quote(step.name)} [label="{label}"{shape}];')
    for parent, child in dag.edges:
        names = [n for n, b in dag.bindings[child].items() if b.step == parent]
        attrs = f' [label="{_shorten(names)}"]' if names else " [style=dashed]"
        lines.append(f"  {_quote(parent)} -> {_quote(child)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _shorten(names: list[str], limit: int = 3) -> str:
    names = sorted(names)
    text = ", ".join(names[:limit])
    return text + (f", +{len(names) - limit}" if len(names) > limit else "")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
