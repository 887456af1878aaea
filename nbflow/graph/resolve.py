"""Where each name a step reads comes from, with notebook (top-to-bottom) semantics.

A read resolves to the nearest earlier step that outputs the name. A
``%%branch NAME`` exports only ``NAME`` (its list of per-task namespaces);
names bound inside it stay inside. Then parameters, then setup names; anything
else is "unresolved" (perhaps provided by the kernel) and creates no edge.
Names starting with ``_`` are private to their step: only setup can provide them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, TypeVar

from nbflow.ids import StepName
from nbflow.notebook.spec import NotebookSpec, StepSpec

T = TypeVar("T")
BindingSource = Literal["step", "branch", "parameter", "setup", "unresolved"]


@dataclass(frozen=True)
class Binding:
    """Where one input of one step comes from; ``step`` is set for step/branch sources."""

    name: str
    source: BindingSource
    step: StepName | None = None


def exports(step: StepSpec) -> frozenset[str]:
    """Names a step makes visible to later cells."""
    if step.kind == "branch":
        return frozenset({step.name})
    return step.public_outputs


def last_producers(producers: Iterable[tuple[int, str, T]], *,
                   before: int | None = None) -> dict[str, T]:
    """Each name's producer as a kernel run top to bottom sees it: the one in the latest
    cell (only cells before ``before`` when given). ``producers`` holds ``(cell, name,
    producer)`` triples in any order. The one implementation of this rule: the DAG's
    edges, ``Run.data``, the run's metrics and ``%nbflow checkout`` all use it."""
    found: dict[str, tuple[int, T]] = {}
    for cell, name, producer in producers:
        if before is not None and cell >= before:
            continue
        if name not in found or cell > found[name][0]:
            found[name] = (cell, producer)
    return {name: producer for name, (_cell, producer) in found.items()}


def resolve_input(spec: NotebookSpec, index: int, name: str) -> Binding:
    """Resolve ``name`` as read by ``spec.steps[index]``."""
    earlier = last_producers(((i, out, s) for i, s in enumerate(spec.steps[:index])
                              for out in exports(s) if out == name))
    if name in earlier:
        return Binding(name, earlier[name].kind, earlier[name].name)
    if name in {p.name for p in spec.parameters}:
        return Binding(name, "parameter")
    if name in spec.setup_outputs:
        return Binding(name, "setup")
    return Binding(name, "unresolved")


def resolve_all(spec: NotebookSpec) -> list[dict[str, Binding]]:
    """One ``{name: Binding}`` per step, in cell order (duplicate names kept apart)."""
    return [
        {name: resolve_input(spec, i, name) for name in sorted(step.inputs)}
        for i, step in enumerate(spec.steps)
    ]


def parents_of(
    spec: NotebookSpec, index: int, bindings: dict[str, Binding]
) -> tuple[StepName, ...]:
    """Inferred producers plus existing ``--after`` targets, in cell order."""
    step = spec.steps[index]
    position = {s.name: i for i, s in reversed(list(enumerate(spec.steps)))}
    wanted = {b.step for b in bindings.values() if b.step is not None}
    wanted |= {a for a in step.magic.after if a in position}
    return tuple(sorted(wanted, key=lambda name: position[name]))
