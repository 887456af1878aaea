"""Orders and reachability over a DAG (read-only)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    """Groups of steps that wait for each other (incl. a step waiting for itself), in ``order``.
    Linear in the edges (strongly connected components), however long the chains."""
    order = list(order)
    component = _components(parents, order)
    size: dict[int, int] = {}
    for number in component.values():
        size[number] = size.get(number, 0) + 1
    groups: dict[int, list[StepName]] = {}
    for name in order:
        groups.setdefault(component[name], []).append(name)
    return [group for number, group in groups.items()  # in order of each group's first step
            if size[number] > 1 or group[0] in parents.get(group[0], ())]


def _components(parents: Mapping[StepName, Sequence[StepName]],
                starts: Iterable[StepName]) -> dict[StepName, int]:
    """Each name's strongly connected component (Tarjan's algorithm, without recursion)."""
    index: dict[StepName, int] = {}
    low: dict[StepName, int] = {}
    component: dict[StepName, int] = {}
    stack: list[StepName] = []
    on_stack: set[StepName] = set()

    def enter(name: StepName) -> tuple[StepName, Iterator[StepName]]:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        return name, iter(parents.get(name, ()))

    for start in starts:
        if start in index:
            continue
        work = [enter(start)]
        while work:
            name, edges = work[-1]
            for parent in edges:
                if parent not in index:
                    work.append(enter(parent))
                    break
                if parent in on_stack:
                    low[name] = min(low[name], index[parent])
            else:
                work.pop()
                if work:
                    above = work[-1][0]
                    low[above] = min(low[above], low[name])
                if low[name] == index[name]:
                    number = len(component)  # any number unique to this component
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component[member] = number
                        if member == name:
                            break
    return component
