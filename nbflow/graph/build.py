"""NotebookSpec -> validated, read-only :class:`Dag`. ``build_dag`` is its one builder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from nbflow.errors import ValidationError
from nbflow.graph.checks import validate
from nbflow.graph.resolve import Binding, BindingSource, exports, parents_of, resolve_all
from nbflow.graph.topo import ancestors
from nbflow.ids import StepName
from nbflow.notebook.names import imported_names
from nbflow.notebook.spec import NotebookSpec, StepSpec

__all__ = ["Binding", "BindingSource", "Dag", "build_dag"]


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
    resolved = resolve_all(spec)
    parents = {s.name: parents_of(spec, i, resolved[i]) for i, s in enumerate(spec.steps)}
    if check:
        problems = validate(spec, resolved, parents)
        if problems:
            raise ValidationError(list(problems), notebook=spec.path)
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
    return replace(dag, warnings=tuple(parallel_output_warnings(dag)))


def parallel_output_warnings(dag: Dag) -> list[str]:
    """Two steps that may run at the same time output a public name that a later step
    reads: which value it gets then depends on cell order alone, usually a mistake.
    A name no step reads afterwards is harmless (e.g. a scratch ``fig`` in both)."""
    lineage = {s.name: ancestors(dag, s.name) for s in dag.steps}
    imports = {s.name: imported_names(s.source) for s in dag.steps}
    found = []
    for i, first in enumerate(dag.steps):
        for second in dag.steps[i + 1 :]:
            if first.name in lineage[second.name] or second.name in lineage[first.name]:
                continue
            shared = exports(first) & exports(second)
            shared -= imports[first.name] & imports[second.name]  # the same import, harmless
            readers = {name: _readers(dag, name, second) for name in sorted(shared)}
            read = {name: steps for name, steps in readers.items() if steps}
            if read:
                found.append(_parallel_warning(first, second, read))
    return found


def _readers(dag: Dag, name: str, second: StepSpec) -> list[StepSpec]:
    """Steps after ``second`` in cell order that read ``name`` from it."""
    return [s for s in dag.steps if s.cell > second.cell
            and (b := dag.bindings[s.name].get(name)) is not None and b.step == second.name]


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
