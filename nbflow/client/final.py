"""What a run ends up holding: each name from its last producer in cell order.

``Run.data``, ``compare()`` and the runs table's metrics all read a run's final values
from here, so they cannot disagree. A ``%%branch NAME`` contributes only ``NAME`` (its
list of per-task namespaces); names bound inside it are not the run's.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from nbflow.graph.resolve import last_producers
from nbflow.store.catalog import Catalog
from nbflow.store.serialize import ArtifactRecord

ARTIFACT_COLUMNS = ("name", "type", "hash", "size", "format", "repr", "shape", "schema",
                    "metric", "persisted", "reason")
FINISHED = ("succeeded", "cached", "cloned")


class Source(NamedTuple):
    """Where a run's final value of a name lives; ``record`` is ``None`` for a branch."""

    step: str
    task: int | None
    record: ArtifactRecord | None


RunKey = tuple[str, int]  # (flow, run_id)


def record_from_row(row: tuple[Any, ...]) -> ArtifactRecord:
    name, type_, hash_, size, fmt, text, shape, schema, metric, persisted, reason = row
    return ArtifactRecord(
        name=name, type=type_, hash=hash_, size=size or 0, format=fmt, repr=text or "",
        shape=json.loads(shape) if shape else None,
        schema=json.loads(schema) if schema else None, metric=metric,
        persisted=bool(persisted), reason=reason,
    )


def final_sources(catalog: Catalog, runs: str, args: list[Any]) -> dict[RunKey, dict[str, Source]]:
    """Final values of every run selected by the SQL ``runs`` (yielding flow, run_id), in
    one query: artifacts of finished tasks, and each branch as a whole."""
    columns = ", ".join(f"a.{c}" for c in ARTIFACT_COLUMNS)
    rows = catalog.execute_read(
        f"SELECT s.flow, s.run_id, s.step, s.kind, s.cell, {columns} FROM steps s "
        "LEFT JOIN tasks t ON t.flow = s.flow AND t.run_id = s.run_id AND t.step = s.step "
        f"AND t.status IN {FINISHED} "
        "LEFT JOIN artifacts a ON a.flow = t.flow AND a.run_id = t.run_id "
        "AND a.step = t.step AND a.task_index = t.task_index "
        f"WHERE (s.flow, s.run_id) IN ({runs}) AND (s.kind = 'branch' OR a.name IS NOT NULL)",
        args,
    )
    producers: dict[RunKey, list[tuple[int, str, Source]]] = {}
    for flow, run_id, step, kind, cell, *artifact in rows:
        found = producers.setdefault((flow, run_id), [])
        if kind == "branch":
            found.append((cell, step, Source(step, None, None)))
        elif not artifact[0].startswith("_"):
            found.append((cell, artifact[0], Source(step, 0, record_from_row(tuple(artifact)))))
    return {key: last_producers(items) for key, items in producers.items()}


def metrics_of(sources: dict[str, Source]) -> dict[str, float]:
    """The numeric scalars among a run's final values, by name."""
    return {name: float(s.record.metric) for name, s in sorted(sources.items())
            if s.record is not None and s.record.metric is not None}
