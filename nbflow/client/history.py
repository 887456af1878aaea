"""Read helpers for run-history views: the runs table, per-step state, two-run differences.

Everything here is a read of the catalog through ``Catalog.execute_read`` (which opens
and closes the file per call), shaped as plain dataclasses so that widgets and tests
never touch SQL. A few queries serve a whole table: callers poll this every second or
two while runs are in progress.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nbflow.client.final import final_sources, metrics_of
from nbflow.client.objects import Run
from nbflow.store.catalog import Catalog
from nbflow.store.home import Home

DONE = ("succeeded", "cached", "cloned")
REUSED = ("cached", "cloned")


@dataclass
class RunRow:
    """One line of the runs table."""

    flow: str
    run_id: int
    status: str
    started_at: dt.datetime | None  # UTC, naive (as the catalog stores it)
    ended_at: dt.datetime | None
    notebook_path: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    tasks: dict[str, int] = field(default_factory=dict)  # task status -> count
    error: str | None = None

    @property
    def pathspec(self) -> str:
        return f"{self.flow}/{self.run_id}"

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at or utcnow()
        return max(0.0, (end - self.started_at).total_seconds())


@dataclass
class TaskState:
    index: int
    status: str
    seconds: float | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    cached_from: str | None
    element: Any
    error: str | None
    pid: int | None

    @property
    def start(self) -> dt.datetime | None:
        """When the task began, kernel start included (``started_at`` is recorded after it)."""
        if self.ended_at is not None and self.seconds is not None:
            return self.ended_at - dt.timedelta(seconds=self.seconds)
        return self.started_at


@dataclass
class StepState:
    """A planned step with the state of its tasks, as one run recorded it."""

    name: str
    kind: str
    cell: int
    parents: list[str]
    foreach: str | None
    tasks: list[TaskState]
    state: str  # waiting | running | succeeded | cached | failed | cancelled | skipped

    @property
    def seconds(self) -> float | None:
        """Wall time from the first task's start to the last task's end (or now)."""
        starts = [t.start for t in self.tasks if t.start is not None]
        if not starts:
            return None
        if self.state == "running":
            return max(0.0, (utcnow() - min(starts)).total_seconds())
        ends = [t.ended_at for t in self.tasks if t.ended_at is not None]
        return max(0.0, (max(ends) - min(starts)).total_seconds()) if ends else None

    @property
    def done(self) -> int:
        return sum(t.status in DONE for t in self.tasks)

    @property
    def cached(self) -> bool:
        return bool(self.tasks) and all(t.status in REUSED for t in self.tasks)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _catalog(home: Home | str | None) -> Catalog:
    where = home if isinstance(home, Home) else Home(home)
    return Catalog(where.catalog_path, where)


def _recorded(catalog: Catalog) -> bool:
    """A history of a home where nothing ran yet is empty (reading creates nothing)."""
    import os

    return os.path.exists(catalog.path)


def flows(home: Home | str | None = None) -> list[str]:
    """Every flow with a recorded run, by name."""
    catalog = _catalog(home)
    if not _recorded(catalog):
        return []
    rows = catalog.execute_read("SELECT DISTINCT flow FROM runs ORDER BY flow", [])
    return [r[0] for r in rows]


def list_runs(
    home: Home | str | None = None,
    *,
    flow: str | None = None,
    run_id: int | None = None,
    status: str | None = None,
    limit: int = 200,
    since: dt.datetime | None = None,
    include: Iterable[tuple[str, int]] = (),
) -> list[RunRow]:
    """Newest runs first, with their parameters, metrics, tags and task counts. With
    ``since``, only runs started after it, plus the runs in ``include`` (a poller's runs
    that were in progress): what may have changed since a reader's last look."""
    catalog = _catalog(home)
    if not _recorded(catalog):
        return []
    where, args = ["TRUE"], []
    if since is not None:
        known = [(str(f), int(r)) for f, r in include]
        pairs = " OR ".join("(flow = ? AND run_id = ?)" for _ in known)
        where.append(f"(started_at >= ?{' OR ' + pairs if pairs else ''})")
        args += [since, *[v for pair in known for v in pair]]
    if flow:
        where.append("flow = ?")
        args.append(flow)
    if run_id is not None:
        where.append("run_id = ?")
        args.append(int(run_id))
    if status:
        where.append("status = ?")
        args.append(status)
    picked = (f"SELECT flow, run_id FROM runs WHERE {' AND '.join(where)} "
              f"ORDER BY started_at DESC, run_id DESC LIMIT {int(limit)}")
    rows = catalog.execute_read(
        "SELECT flow, run_id, status, started_at, ended_at, notebook_path, error FROM runs "
        f"WHERE (flow, run_id) IN ({picked}) ORDER BY started_at DESC, run_id DESC", args)
    found = {(r[0], r[1]): RunRow(r[0], r[1], r[2], r[3], r[4], r[5] or "", error=r[6])
             for r in rows}
    if not found:
        return []
    # The rest reads exactly these runs: re-evaluating the selection in each query would
    # pick up a run recorded meanwhile (a KeyError here, under a polling widget).
    picked = ("SELECT * FROM (VALUES " + ", ".join("(?, ?)" for _ in found)
              + ") AS picked(flow, run_id)")
    args = [value for key in found for value in key]
    scope = f"(flow, run_id) IN ({picked})"
    for f, r, name, value in catalog.execute_read(
            f"SELECT flow, run_id, name, value FROM params WHERE {scope} ORDER BY name", args):
        found[(f, r)].params[name] = json.loads(value)
    for f, r, tag in catalog.execute_read(
            f"SELECT flow, run_id, tag FROM tags WHERE {scope} ORDER BY tag", args):
        found[(f, r)].tags.append(tag)
    for f, r, task_status, n in catalog.execute_read(
            f"SELECT flow, run_id, status, count(*) FROM tasks WHERE {scope} "
            "GROUP BY ALL", args):
        found[(f, r)].tasks[task_status] = int(n)
    for key, sources in final_sources(catalog, picked, args).items():
        if key in found:
            found[key].metrics = metrics_of(sources)
    return list(found.values())


def run_row(run: Run) -> RunRow:
    """The runs-table line of one run."""
    return list_runs(run.home, flow=run.flow, run_id=run.id, limit=1)[0]


def step_states(run: Run) -> list[StepState]:
    """The run's planned steps (cell order) with their tasks and an overall state each."""
    rows = run._catalog.execute_read(
        "SELECT step, task_index, status, duration_s, started_at, ended_at, cached_from, "
        "foreach_element, error, pid FROM tasks WHERE flow = ? AND run_id = ? "
        "ORDER BY step, task_index", [run.flow, run.id])
    tasks: dict[str, list[TaskState]] = {}
    for step, index, status, secs, start, end, origin, element, error, pid in rows:
        tasks.setdefault(step, []).append(TaskState(
            index, status, secs, start, end, origin, _element(element), error, pid))
    running = run.status == "running"
    return [
        StepState(
            name=s["step"], kind=s["kind"], cell=s["cell"], parents=list(s["parents"]),
            foreach=s["foreach"], tasks=tasks.get(s["step"], []),
            state=step_state(tasks.get(s["step"], []), running),
        )
        for s in run.dag()
    ]


def _element(value: Any) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def step_state(tasks: Iterable[TaskState], run_running: bool) -> str:
    """One word for a step from its tasks' statuses."""
    statuses = [t.status for t in tasks]
    if not statuses:
        return "waiting" if run_running else "skipped"
    if "failed" in statuses and not (run_running and "running" in statuses):
        return "failed"
    if "running" in statuses or "pending" in statuses:
        return "running" if run_running else "cancelled"
    if "cancelled" in statuses:
        return "cancelled"
    if all(s in REUSED for s in statuses):
        return "cached"
    return "succeeded"


@dataclass
class Difference:
    name: str
    a: Any
    b: Any

    @property
    def changed(self) -> bool:
        return bool(self.a != self.b)


@dataclass
class StepComparison:
    name: str
    a: str  # "ran", "cached from …", "failed", "not run", …
    b: str


@dataclass
class Comparison:
    a: RunRow
    b: RunRow
    params: list[Difference]
    metrics: list[Difference]
    steps: list[StepComparison]


def compare_runs(a: Run, b: Run) -> Comparison:
    """Parameters and metrics side by side, and how each step got its result in each run."""
    row_a, row_b = run_row(a), run_row(b)
    states_a = {s.name: s for s in step_states(a)}
    states_b = {s.name: s for s in step_states(b)}
    names = list(dict.fromkeys([*states_a, *states_b]))
    return Comparison(
        a=row_a, b=row_b,
        params=_differences(row_a.params, row_b.params),
        metrics=_differences(row_a.metrics, row_b.metrics),
        steps=[StepComparison(n, _how(states_a.get(n)), _how(states_b.get(n))) for n in names],
    )


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    return [Difference(n, a.get(n), b.get(n)) for n in sorted(set(a) | set(b))]


def _how(state: StepState | None) -> str:
    if state is None:
        return "not in this run"
    if state.cached:
        origins = sorted({"/".join(t.cached_from.split("/")[:2]) for t in state.tasks
                          if t.cached_from})
        return f"cached from {', '.join(origins)}" if origins else "cached"
    reused = sum(t.status in REUSED for t in state.tasks)
    if state.state == "succeeded" and reused:
        return f"ran {len(state.tasks) - reused}, cached {reused}"
    return {"succeeded": "ran", "skipped": "not run"}.get(state.state, state.state)
