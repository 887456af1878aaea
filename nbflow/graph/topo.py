"""Orders and reachability over a DAG (read-only)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from nbflow.errors import DagError
from nbflow.ids import StepName
from nbflow.notebook.spec import StepSpec


class DagView(Protocol):
    """What ordering needs from a DAG; :class:`nbflow.graph.build.Dag` provides it."""

    @property
    def steps(self) -> Sequence[StepSpec]: ...

    @property
    def parents(self) -> Mapping[StepName, Sequence[StepName]]: ...

    @property
    def children(self) -> Mapping[StepName, Sequence[StepName]]: ...


def topo_order(dag: DagView) -> list[StepName]:
    """Parents before children; among ready steps, cell order."""
    position = {s.name: i for i, s in enumerate(dag.steps)}
    waiting = {name: len(set(dag.parents.get(name, ()))) for name in position}
    ready = [(position[n], n) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[StepName] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for child in set(dag.children.get(name, ())):
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (position[child], child))
    if len(order) < len(position):
        stuck = [s for s in position if s not in order]
        raise DagError(
            "steps " + ", ".join(repr(s) for s in stuck) + " depend on each other in a cycle",
            step=stuck[0],
            hint="remove an --after that points to a later step",
        )
    return order


def ancestors(dag: DagView, step: StepName) -> frozenset[StepName]:
    """Every step ``step`` (transitively) waits for."""
    return _reach(dag.parents, step)


def descendants(dag: DagView, step: StepName) -> frozenset[StepName]:
    """Every step that (transitively) waits for ``step``."""
    return _reach(dag.children, step)


def _reach(edges: Mapping[StepName, Sequence[StepName]], start: StepName) -> frozenset[StepName]:
    seen: set[StepName] = set()
    stack = list(edges.get(start, ()))
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(edges.get(name, ()))
    return frozenset(seen)


def find_cycles(
    parents: Mapping[StepName, Sequence[StepName]], order: Iterable[StepName]
) -> list[list[StepName]]:
    """Groups of steps that wait for each other (incl. a step waiting for itself), in ``order``."""
    order = list(order)
    reach = {name: _reach(parents, name) for name in order}
    cycles: list[list[StepName]] = []
    placed: set[StepName] = set()
    for name in order:
        if name in placed or name not in reach[name]:
            continue
        group = [other for other in order if other in reach[name] and name in reach[other]]
        placed.update(group)
        cycles.append(group)
    return cycles
