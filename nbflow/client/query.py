"""SQL over everything nbflow recorded, and runs side by side.

``nbflow.sql("SELECT ...")`` runs on the catalog's tables and views: ``runs``,
``tasks``, ``steps``, ``artifacts``, ``params``, ``metrics``, ``tags``. A DataFrame
artifact is a table too: write ``artifact('FLOW/RUN/STEP/TASK', 'NAME')`` (or
``artifact('FLOW/RUN', 'NAME')`` for the run's final value of NAME) where a table
goes, e.g. ``SELECT avg(petal_length) FROM artifact('iris/3/load/0', 'df')``.
"""

from __future__ import annotations

import re
from typing import Any

from nbflow.client import lineage
from nbflow.client.final import metrics_of
from nbflow.client.objects import Run, Step, Task, _catalog, _home
from nbflow.client.pathspec import parse_pathspec
from nbflow.errors import PathspecError
from nbflow.store.home import Home
from nbflow.store.serialize import load_arrow_table

_ARTIFACT = re.compile(r"artifact\(\s*'([^']+)'\s*,\s*'([^']+)'\s*\)", re.IGNORECASE)


def sql(query: str, *, home: Home | str | None = None) -> Any:
    """Run a read-only query; returns a pandas DataFrame."""
    where = _home(home)
    tables: dict[str, Any] = {}

    def register(match: re.Match[str]) -> str:
        name = f"_nbflow_artifact_{len(tables)}"
        tables[name] = _artifact_table(where, match.group(1), match.group(2))
        return name

    rewritten = _ARTIFACT.sub(register, query)
    return _catalog(where).query(rewritten, tables=tables)


def _artifact_table(home: Home, pathspec: str, name: str) -> Any:
    spec = parse_pathspec(pathspec)
    if spec.run is None:
        raise PathspecError(f"artifact({pathspec!r}, {name!r}): name a run or a task",
                            hint="e.g. artifact('classifier/3/load/0', 'df')")
    run = Run(f"{spec.flow}/{spec.run}", home=home, _via=f"sql artifact({pathspec!r})")
    if spec.step is None:
        data = run.data
        if name not in data:
            raise PathspecError(f"run {run.pathspec} has no artifact {name!r}")
        step, index, _record = data._sources[name]
        task = Task(Step(run, step), index if index is not None else 0)
    else:
        task = Task(Step(run, spec.step), spec.task or 0)
    records = task.artifacts
    if name not in records:
        raise PathspecError(f"task {task.pathspec} has no artifact {name!r}",
                            hint=f"it has: {', '.join(sorted(records)) or 'none'}")
    record = records[name]
    if record.format != "arrow":
        raise PathspecError(
            f"artifact {name!r} of {task.pathspec} is a {record.type}, not a DataFrame",
            hint="only DataFrame artifacts are tables; scalars are in the metrics view")
    lineage.note_artifact(task.run.flow, task.run.id, task.step.name, task.index, name,
                          record.hash, "sql")
    return load_arrow_table(home.objects, record)


def compare(runs: list[Run | str], *, home: Home | str | None = None) -> Any:
    """One row per run: its status, parameters (``param.*``) and final metrics (``metric.*``)."""
    import pandas as pd

    rows = []
    for item in runs:
        run = item if isinstance(item, Run) else Run(item, home=home)
        row: dict[str, Any] = {"run": run.pathspec, "status": run.status}
        row.update({f"param.{k}": v for k, v in run.params.items()})
        row.update({f"metric.{k}": v for k, v in final_metrics(run).items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def final_metrics(run: Run) -> dict[str, float]:
    """Numeric scalars among the run's final values (``run.data``): each name from its last
    producer in cell order (a branch's per-task values belong to its namespaces)."""
    return metrics_of(run.data._sources)
