"""NotebookSpec -> validated, read-only :class:`Dag`. ``build_dag`` is its one builder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from nbflow.errors import DagError, ValidationError
from nbflow.graph.checks import validate
from nbflow.graph.resolve import (
    Binding,
    BindingSource,
    exports,
    parents_of,
    resolve_all,
    step_positions,
)
from nbflow.graph.topo import ancestors
from nbflow.ids import StepName
from nbflow.notebook.names import imported_names
from nbflow.notebook.spec import NotebookSpec, StepSpec

__all__ = ["Binding", "BindingSource", "Dag", "build_dag", "dag_and_problems"]


@dataclass(frozen=True)
class Dag:
    """The steps of one notebook, where each input comes from, and the edges."""

    spec: NotebookSpec
    steps: tuple[StepSpec, ...]  # in cell order
    bindings: Mapping[StepName, Mapping[str, Binding]]  # every input of every step
    parents: Mapping[StepName, tuple[StepName, ...]]  # inferred + --after, in cell order
    children: Mapping[StepName, tuple[StepName, ...]]
    warnings: tuple[str, ...] = field(default=())  # likely mistakes; the caller prints them

    def step(self, name: str) -> StepSpec:
        return self.spec.step(name)

    @property
    def edges(self) -> list[tuple[StepName, StepName]]:
        """``(parent, child)`` pairs in cell order of the child."""
        return [(p, s.name) for s in self.steps for p in self.parents[s.name]]


def build_dag(spec: NotebookSpec, *, check: bool = True) -> Dag:
    """Resolve every input and add the edges; raise one ValidationError listing every
    problem. ``check=False`` gives a best-effort DAG (e.g. for a view while editing)."""
    dag, problems = dag_and_problems(spec, check=check)
    if problems:
        raise ValidationError(list(problems), notebook=spec.path)
    return dag


def dag_and_problems(spec: NotebookSpec, *, check: bool = True) -> tuple[Dag, list[DagError]]:
    """The best-effort DAG and, with ``check``, every problem ``build_dag`` would raise
    (the lab shows both while the user edits)."""
    resolved = resolve_all(spec)
    position = step_positions(spec)
    parents = {s.name: parents_of(spec, i, resolved[i], position)
               for i, s in enumerate(spec.steps)}
    problems = validate(spec, resolved, parents) if check else []
    children: dict[StepName, list[StepName]] = {s.name: [] for s in spec.steps}
    for step in spec.steps:
        for parent in parents[step.name]:
            if step.name not in children[parent]:
                children[parent].append(step.name)
    dag = Dag(
        spec=spec,
        steps=spec.steps,
        bindings=MappingProxyType(
            {s.name: MappingProxyType(resolved[i]) for i, s in enumerate(spec.steps)}
        ),
        parents=MappingProxyType(parents),
        children=MappingProxyType({k: tuple(v) for k, v in children.items()}),
    )
    return replace(dag, warnings=tuple(parallel_output_warnings(dag))), problems


def parallel_output_warnings(dag: Dag) -> list[str]:
    """Two steps that may run at the same time output a public name that a later step
    reads: which value it gets then depends on cell order alone, usually a mistake.
    A name no step reads afterwards is harmless (e.g. a scratch ``fig`` in both).
    Linear in the notebook but for the pairs that share a name some later step reads
    (the lab re-checks a 400-cell notebook on every edit; a scratch name such as
    ``values`` bound by every step costs nothing)."""
    steps = dag.steps
    readers = _readers_by_producer(dag)
    upstream: dict[StepName, frozenset[StepName]] | None = None
    shared: dict[tuple[int, int], set[str]] = {}
    producers: dict[str, list[int]] = {}
    for j, second in enumerate(steps):
        for name in exports(second):
            earlier = producers.setdefault(name, [])
            # only a value some later step reads from `second` can be the wrong one
            if earlier and any(s.cell > second.cell
                               for s in readers.get((second.name, name), ())):
                if upstream is None:
                    upstream = _ancestor_sets(dag)
                for i in earlier:
                    first = steps[i]
                    if first.name in upstream[second.name] or second.name in upstream[first.name]:
                        continue  # one waits for the other: the later cell wins, as intended
                    shared.setdefault((i, j), set()).add(name)
            earlier.append(j)
    found = []
    for i, j in sorted(shared):
        first, second = steps[i], steps[j]
        # the same import in both is harmless
        names = shared[(i, j)] - (imported_names(first.source) & imported_names(second.source))
        read = {name: [s for s in readers.get((second.name, name), []) if s.cell > second.cell]
                for name in sorted(names)}
        read = {name: found_by for name, found_by in read.items() if found_by}
        if read:
            found.append(_parallel_warning(first, second, read))
    return found


def _readers_by_producer(dag: Dag) -> dict[tuple[StepName, str], list[StepSpec]]:
    """(producer, name) -> the steps, in cell order, that read ``name`` from it."""
    found: dict[tuple[StepName, str], list[StepSpec]] = {}
    for step in dag.steps:
        for name, binding in dag.bindings[step.name].items():
            if binding.step is not None:
                found.setdefault((binding.step, name), []).append(step)
    return found


def _ancestor_sets(dag: Dag) -> dict[StepName, frozenset[StepName]]:
    """Every step's ancestors, each built from its parents' (linear in the edges for a
    DAG; a step on a cycle, which validation reports, falls back to a plain walk)."""
    found: dict[StepName, frozenset[StepName]] = {}
    visiting: set[StepName] = set()

    def visit(name: StepName) -> frozenset[StepName]:
        if name in found:
            return found[name]
        if name in visiting:
            return ancestors(dag, name)
        visiting.add(name)
        parents = dag.parents.get(name, ())
        result = frozenset(parents).union(*(visit(p) for p in parents))
        visiting.discard(name)
        found[name] = result
        return result

    for step in dag.steps:
        visit(step.name)
    return found


def _parallel_warning(first: StepSpec, second: StepSpec,
                      read: dict[str, list[StepSpec]]) -> str:
    listed = ", ".join(repr(n) for n in read)
    readers = "; ".join(
        f"{name!r} is read by " + ", ".join(f"step {s.name!r} (cell {s.cell})" for s in steps)
        for name, steps in read.items())
    return (
        f"cells {first.cell} and {second.cell}: steps {first.name!r} and {second.name!r} "
        f"both output {listed} and may run in parallel; {readers}, which gets the value "
        f"from {second.name!r} (cell {second.cell}). Rename one, or add --after {first.name} "
        f"to {second.name!r} if it must run second"
    )
