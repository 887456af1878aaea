"""Where each name a step reads comes from, with notebook (top-to-bottom) semantics.

A read resolves to the nearest earlier step that outputs the name. A
``%%branch NAME`` exports only ``NAME`` (its list of per-task namespaces);
names bound inside it stay inside. Then parameters, then setup names; anything
else is "unresolved" (perhaps provided by the kernel) and creates no edge.
Names starting with ``_`` are private to their step: only setup can provide them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nbflow.ids import StepName
from nbflow.notebook.spec import NotebookSpec, StepSpec

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


def resolve_input(spec: NotebookSpec, index: int, name: str) -> Binding:
    """Resolve ``name`` as read by ``spec.steps[index]``."""
    for earlier in reversed(spec.steps[:index]):
        if name in exports(earlier):
            return Binding(name, earlier.kind, earlier.name)
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
