"""A batch of events applied at once (bulk statements) leaves the catalog exactly as the
same events applied one by one: retries, reruns, artifacts, lineage and a run's end."""

from __future__ import annotations

from pathlib import Path

from nbflow.store.catalog import Catalog
from nbflow.store.events import RunFinished, RunRecord, TaskFinished, TaskStarted
from nbflow.store.serialize import ArtifactRecord

TABLES = {
    "tasks": "SELECT * FROM tasks ORDER BY flow, run_id, step, task_index",
    "artifacts": "SELECT * FROM artifacts ORDER BY flow, run_id, step, task_index, name",
    "lineage": "SELECT * FROM lineage ORDER BY flow, run_id, step, task_index, read_name",
    "runs": "SELECT flow, run_id, status, ended_at, error FROM runs ORDER BY flow, run_id",
}


def _artifact(name: str, n: int) -> ArtifactRecord:
    return ArtifactRecord(name, "int", f"{n:032x}", 8, "pickle", str(n), metric=float(n),
                          persisted=True)


def _events() -> list[object]:
    t = 1_700_000_000.0
    read = [{"kind": "artifact", "flow": "other", "run": 3, "step": "s", "index": 0,
             "name": "x", "hash": "ab" * 16, "via": "Flow"}]
    events: list[object] = []
    for i in range(7):
        events.append(TaskStarted("f", 1, "work", i, foreach_element=i, pid=100 + i,
                                  started_at=t + i, kernel_mode="fork", queued_at=t))
    # task 2 fails, is retried and succeeds; task 5 fails twice; 3 is finished twice
    events.append(TaskFinished("f", 1, "work", 2, "failed", ended_at=t + 3, duration_s=1.0,
                               error="boom", cache_key="k2"))
    events.append(TaskStarted("f", 1, "work", 2, foreach_element=2, pid=200, started_at=t + 4,
                              attempt=2, kernel_mode="fork"))
    for i in (0, 1, 2, 3, 4, 6):
        events.append(TaskFinished(
            "f", 1, "work", i, "succeeded", ended_at=t + 10 + i, duration_s=0.5,
            peak_memory=1000 + i, cache_key=f"k{i}", artifacts=[_artifact("out", i),
                                                                _artifact("twice", 2 * i)],
            python="3.11", packages={"numpy": "2.0"}, cache_parts={"source": "s"},
            lineage=read if i % 2 else []))
    events.append(TaskFinished("f", 1, "work", 3, "succeeded", ended_at=t + 20,
                               duration_s=0.7, artifacts=[_artifact("out", 33)]))
    for attempt in range(2):
        events.append(TaskFinished("f", 1, "work", 5, "failed", ended_at=t + 30 + attempt,
                                   error=f"bad {attempt}"))
        events.append(TaskStarted("f", 1, "work", 5, pid=300 + attempt, started_at=t + 31,
                                  attempt=attempt + 2))
    # a task never started (served from the cache), then the run ends, then a late event
    events.append(TaskFinished("f", 1, "cached", 0, "cached", started_at=t, ended_at=t,
                               duration_s=0.0, cached_from="f/0/cached/0", foreach_element="e",
                               queued_at=t, artifacts=[_artifact("c", 9)]))
    events.append(RunFinished("f", 1, "failed", ended_at=t + 40, error="work/5 failed"))
    events.append(TaskFinished("f", 1, "work", 5, "failed", ended_at=t + 41, error="late"))
    return events


def _catalog(path: Path) -> Catalog:
    catalog = Catalog(path / "catalog.duckdb").create()
    assert catalog.new_run(RunRecord("f", started_at=1_700_000_000.0)) == 1
    return catalog


def _tables(catalog: Catalog) -> dict[str, list[tuple[object, ...]]]:
    return {name: catalog.execute_read(sql) for name, sql in TABLES.items()}


def test_one_batch_equals_the_events_one_by_one(tmp_path: Path) -> None:
    events = _events()
    one_by_one, batched = _catalog(tmp_path / "a"), _catalog(tmp_path / "b")
    for event in events:
        one_by_one.apply([event])  # type: ignore[list-item]
    batched.apply(events)  # type: ignore[arg-type]
    expected = _tables(one_by_one)
    assert len(expected["tasks"]) == 8 and len(expected["lineage"]) == 1  # 3 lost its own
    assert _tables(batched) == expected


def test_a_wide_batch_spans_several_statements(tmp_path: Path) -> None:
    n = 600  # more rows than one bulk statement takes
    events = [TaskStarted("f", 1, "w", i, pid=i, started_at=1.0 + i) for i in range(n)]
    events += [TaskFinished("f", 1, "w", i, "succeeded", ended_at=2.0 + i,  # type: ignore[misc]
                            artifacts=[_artifact("a", i), _artifact("b", i)])
               for i in range(n)]
    catalog = _catalog(tmp_path)
    catalog.apply(events)  # type: ignore[arg-type]
    assert catalog.execute_read("SELECT count(*), count(DISTINCT pid) FROM tasks "
                                "WHERE status = 'succeeded'") == [(n, n)]
    assert catalog.execute_read("SELECT count(*) FROM artifacts") == [(2 * n,)]
