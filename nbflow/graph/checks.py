"""Small named checks; :func:`validate` runs them all and reports every problem at once."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence

from nbflow.errors import DagError
from nbflow.graph.resolve import Binding, exports
from nbflow.graph.topo import find_cycles
from nbflow.ids import StepName
from nbflow.notebook.spec import NotebookSpec, StepSpec

Resolved = Sequence[Mapping[str, Binding]]  # one {name: Binding} per step, in cell order


def validate(
    spec: NotebookSpec, resolved: Resolved, parents: Mapping[StepName, Sequence[StepName]]
) -> list[DagError]:
    """Every problem in the notebook's steps, in cell order."""
    problems = [
        *check_duplicate_names(spec),
        *check_after_targets(spec),
        *check_cycles(spec, parents),
        *check_branch_names(spec),
        *check_step_vs_parameter(spec),
    ]
    unresolved = _unresolved_reads(spec, resolved)
    problems += check_foreach_sources(spec, resolved)
    for check in (check_later_definitions, check_branch_locals, check_private_reads):
        problems += check(spec, resolved, unresolved)
    return sorted(problems, key=lambda p: p.cell or 0)


def _error(spec: NotebookSpec, step: StepSpec, message: str, hint: str) -> DagError:
    return DagError(message, notebook=spec.path, cell=step.cell, step=step.name, hint=hint)


def check_duplicate_names(spec: NotebookSpec) -> list[DagError]:
    first: dict[str, StepSpec] = {}
    problems = []
    for step in spec.steps:
        if step.name in first:
            problems.append(_error(
                spec, step,
                f"step name {step.name!r} is already used by cell {first[step.name].cell}",
                "give every %%step/%%branch cell its own name",
            ))  # fmt: skip
        first.setdefault(step.name, step)
    return problems


def check_after_targets(spec: NotebookSpec) -> list[DagError]:
    names = [s.name for s in spec.steps]
    problems = []
    for step in spec.steps:
        for target in step.magic.after:
            if target in names:
                continue
            close = difflib.get_close_matches(target, names, n=1)
            hint = f"did you mean --after {close[0]}?" if close else (
                "steps are: " + ", ".join(names))  # fmt: skip
            problems.append(_error(spec, step, f"--after {target!r} names no step", hint))
    return problems


def check_cycles(
    spec: NotebookSpec, parents: Mapping[StepName, Sequence[StepName]]
) -> list[DagError]:
    by_name = {s.name: s for s in reversed(spec.steps)}
    problems = []
    for cycle in find_cycles(parents, [s.name for s in spec.steps]):
        cells = ", ".join(f"{name!r} (cell {by_name[name].cell})" for name in cycle)
        problems.append(_error(
            spec, by_name[cycle[0]],
            f"steps {cells} wait for each other in a cycle" if len(cycle) > 1
            else f"step {cycle[0]!r} waits for itself",
            "an --after that points to the same or a later step closes the cycle: remove it "
            "or move the cells so that each step comes after what it waits for",
        ))  # fmt: skip
    return problems


def check_branch_names(spec: NotebookSpec) -> list[DagError]:
    params = {p.name: p for p in spec.parameters}
    branches = [s for s in spec.steps if s.kind == "branch"]
    names = {b.name for b in branches}
    binders: dict[str, StepSpec] = {}  # each branch name's first step that binds it
    for step in spec.steps if branches else ():
        for name in step.outputs & names:
            binders.setdefault(name, step)
    problems = []
    for branch in branches:
        clash = _branch_clash(spec, branch, params, binders)
        if clash:
            problems.append(_error(
                spec, branch,
                f"branch name {branch.name!r} is also {clash}",
                f"rename the branch or the variable: later cells read the branch's results "
                f"as the list {branch.name!r}",
            ))  # fmt: skip
    return problems


def _branch_clash(spec: NotebookSpec, branch: StepSpec, params: Mapping[str, object],
                  binders: Mapping[str, StepSpec]) -> str | None:
    if branch.name in params:
        return "a parameter"
    if branch.name in spec.setup_outputs:
        return "a name bound by a setup cell"
    step = binders.get(branch.name)
    if step is not None:
        where = "its own cell" if step is branch else f"step {step.name!r} (cell {step.cell})"
        return f"a variable bound by {where}"
    return None


def check_step_vs_parameter(spec: NotebookSpec) -> list[DagError]:
    params = {p.name: p for p in spec.parameters}
    return [
        _error(
            spec,
            step,
            f"step name {step.name!r} is also a parameter (cell {params[step.name].cell})",
            "rename the step or the parameter",
        )  # fmt: skip
        for step in spec.steps
        if step.kind == "step" and step.name in params
    ]


def check_foreach_sources(spec: NotebookSpec, resolved: Resolved) -> list[DagError]:
    problems = []
    for index, step in enumerate(spec.steps):
        name = step.magic.foreach
        if step.kind != "branch" or name is None or resolved[index][name].source != "unresolved":
            continue
        problems.append(_error(
            spec, step,
            f"--foreach {name!r} names nothing defined above this cell",
            _missing_hint(spec, index, name)
            or f"define {name!r} in an earlier step, a setup cell or the parameters cell",
        ))  # fmt: skip
    return problems


def check_later_definitions(spec: NotebookSpec, resolved: Resolved,
                            unresolved: Unresolved | None = None) -> list[DagError]:
    problems = []
    for index, step, name in _or_unresolved(spec, resolved, unresolved):
        producer = _later_producer(spec, index + 1, name)
        if producer is not None and _earlier_branch(spec, index, name) is None:
            problems.append(_error(
                spec, step,
                f"reads {name!r}, which only a later cell defines: "
                f"{producer.kind} {producer.name!r} (cell {producer.cell})",
                "move the cell up or add the producing step earlier "
                "(a step sees only what the cells above it define)",
            ))  # fmt: skip
    return problems


def check_branch_locals(spec: NotebookSpec, resolved: Resolved,
                        unresolved: Unresolved | None = None) -> list[DagError]:
    problems = []
    for index, step, name in _or_unresolved(spec, resolved, unresolved):
        branch = _earlier_branch(spec, index, name)
        if branch is not None:
            problems.append(_error(
                spec, step,
                f"reads {name!r}, which is bound only inside branch {branch.name!r} "
                f"(cell {branch.cell})",
                f"read it through the branch's list, as {branch.name}[i].{name} "
                f"(e.g. [t.{name} for t in {branch.name}])",
            ))  # fmt: skip
    return problems


def check_private_reads(spec: NotebookSpec, resolved: Resolved,
                        unresolved: Unresolved | None = None) -> list[DagError]:
    problems = []
    for index, step, name in _or_unresolved(spec, resolved, unresolved):
        if not name.startswith("_"):
            continue
        producer = next((s for s in reversed(spec.steps[:index]) if name in s.outputs), None)
        if producer is not None and producer.kind == "step":
            problems.append(_error(
                spec, step,
                f"reads {name!r} from step {producer.name!r} (cell {producer.cell}), but names "
                "starting with '_' are private to their step and are not passed on",
                f"rename it without the leading underscore in cell {producer.cell} and here",
            ))  # fmt: skip
    return problems


Unresolved = list[tuple[int, StepSpec, str]]


def _or_unresolved(spec: NotebookSpec, resolved: Resolved,
                   unresolved: Unresolved | None) -> Unresolved:
    return _unresolved_reads(spec, resolved) if unresolved is None else unresolved


def _unresolved_reads(spec: NotebookSpec, resolved: Resolved) -> list[tuple[int, StepSpec, str]]:
    """Unresolved inputs, except a branch's --foreach (check_foreach_sources reports those)."""
    return [
        (index, step, name)
        for index, step in enumerate(spec.steps)
        for name, binding in sorted(resolved[index].items())
        if binding.source == "unresolved" and name != step.magic.foreach
    ]


def _later_producer(spec: NotebookSpec, start: int, name: str) -> StepSpec | None:
    return next((s for s in spec.steps[start:] if name in exports(s)), None)


def _earlier_branch(spec: NotebookSpec, index: int, name: str) -> StepSpec | None:
    return next(
        (s for s in reversed(spec.steps[:index]) if s.kind == "branch" and name in s.outputs),
        None,
    )


def _missing_hint(spec: NotebookSpec, index: int, name: str) -> str | None:
    producer = _later_producer(spec, index + 1, name)
    if producer is not None:
        return (
            f"{producer.kind} {producer.name!r} defines it in a later cell ({producer.cell}): "
            "move the cell up or add the producing step earlier"
        )
    branch = _earlier_branch(spec, index, name)
    if branch is not None:
        return f"{name!r} is bound only inside branch {branch.name!r}; iterate over {branch.name!r}"
    return None


READ_CHECKS: tuple[Callable[[NotebookSpec, Resolved], list[DagError]], ...] = (
    check_foreach_sources,
    check_later_definitions,
    check_branch_locals,
    check_private_reads,
)
