"""Results a run does not recompute: cache hits (same key, any earlier run) and, with
``--resume``, the origin run's finished tasks (cloned whatever their key)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from nbflow.errors import ResumeError
from nbflow.graph.build import Dag
from nbflow.graph.topo import descendants
from nbflow.ids import StepName
from nbflow.store.catalog import Catalog
from nbflow.store.home import Home
from nbflow.store.manifest import TaskManifest, read_manifest, write_manifest


@dataclass(frozen=True)
class Reused:
    status: str  # "cached" or "cloned"
    manifest: TaskManifest  # the origin task's manifest
    origin: str  # pathspec FLOW/RUN/STEP/INDEX of the task that really ran


class CacheIndex:
    """Successful tasks by cache key.

    One query, on first use, reads the keys of every task that ran a step of these
    names (in any flow: a key is the whole identity of a result); each catalog
    round trip costs milliseconds, which a run of cached steps would pay per step.
    """

    def __init__(self, catalog: Catalog, home: Home, steps: list[str]) -> None:
        self.catalog = catalog
        self.home = home
        self.steps = steps
        self._origins: dict[str, tuple[str, int, str, int]] | None = None

    def query(self) -> tuple[str, list[str]]:
        """The index's one query (sql, params): ``nbflow execute`` runs it in the
        transaction that records the run and hands the rows to ``fill``."""
        marks = ", ".join("?" for _ in self.steps)
        return (f"SELECT cache_key, flow, run_id, step, task_index FROM tasks "
                f"WHERE status = 'succeeded' AND cache_key IS NOT NULL AND step IN ({marks}) "
                f"ORDER BY ended_at", list(self.steps))

    def fill(self, rows: list[tuple[Any, ...]]) -> CacheIndex:
        self._origins = {key: (flow, run, step, index) for key, flow, run, step, index in rows}
        return self

    def _index(self) -> dict[str, tuple[str, int, str, int]]:
        if self._origins is None:
            self.fill(self.catalog.execute_read(*self.query()))
        assert self._origins is not None
        return self._origins

    def lookup(self, keys: list[str]) -> dict[str, Reused]:
        origins = self._index()
        found: dict[str, Reused] = {}
        for key in keys:
            if key in found or key not in origins:
                continue
            flow, run_id, step, index = origins[key]
            manifest = read_manifest(self.home, flow, run_id, step, index)
            if manifest is not None and self._complete(manifest) and not self._stale(manifest):
                found[key] = Reused("cached", manifest, f"{flow}/{run_id}/{step}/{index}")
        return found

    def _stale(self, manifest: TaskManifest) -> bool:
        """The task read a latest run of another flow that a newer run now replaces."""
        from nbflow.run.upstream import stale

        return bool(manifest.lineage) and bool(stale(manifest.lineage, self.catalog))

    def _complete(self, manifest: TaskManifest) -> bool:
        """Every stored object the task produced is still in the store."""
        records = [*manifest.artifacts, *(r for rs in manifest.splits.values() for r in rs)]
        return all(self.home.objects.exists(r.hash) for r in records if r.persisted and r.hash)


@dataclass(frozen=True)
class ResumePlan:
    origin_run: int
    params: dict[str, Any]
    clone_steps: frozenset[str]
    rerun_steps: frozenset[str] = frozenset()  # --from STEP and after: run, never cached
    origin_keys: dict[tuple[str, int], str] = field(default_factory=dict)

    def reuse(self, home: Home, flow: str, step: str, index: int,
              key: str | None = None) -> Reused | None:
        """The origin's task to clone, or None. A task that could not store an artifact
        is cloned only while its key is unchanged: once its code is fixed it runs again,
        rather than hand its downstream steps the same missing value."""
        if step not in self.clone_steps:
            return None
        manifest = read_manifest(home, flow, self.origin_run, step, index)
        if manifest is None:
            return None
        unstored = any(not a.persisted for a in manifest.artifacts)
        if unstored and key is not None and self.origin_keys.get((step, index)) != key:
            return None
        return Reused("cloned", manifest, f"{flow}/{self.origin_run}/{step}/{index}")


def plan_resume(catalog: Catalog, dag: Dag, run: str, from_step: str | None) -> ResumePlan:
    """The run to resume (``run``: an id, FLOW/ID, or "" for the latest) and what to clone."""
    flow = dag.spec.flow
    origin = _origin_run(catalog, flow, run)
    names = [s.name for s in dag.steps]
    if from_step is not None and from_step not in names:
        raise ResumeError(f"--from {from_step}: the notebook has no step {from_step!r}",
                          notebook=dag.spec.path, hint=f"steps: {', '.join(names)}")
    rerun = {from_step, *descendants(dag, StepName(from_step))} if from_step else set()
    rows = catalog.execute_read(
        "SELECT name, value FROM params WHERE flow = ? AND run_id = ?", [flow, origin])
    keys = catalog.execute_read(
        "SELECT step, task_index, cache_key FROM tasks WHERE flow = ? AND run_id = ?",
        [flow, origin])
    return ResumePlan(origin, {n: json.loads(v) for n, v in rows},
                      frozenset(n for n in names if n not in rerun), frozenset(rerun),
                      {(step, index): key for step, index, key in keys if key})


def _origin_run(catalog: Catalog, flow: str, run: str) -> int:
    text = run.strip()
    if "/" in text:
        other, _, text = text.partition("/")
        if other != flow:
            raise ResumeError(
                f"--resume {run}: that run belongs to flow {other!r}, not to this notebook "
                f"({flow!r})", hint=f"resume one of {flow!r}'s runs (nbflow runs {flow})")
    if not text:
        rows = catalog.execute_read("SELECT max(run_id) FROM runs WHERE flow = ?", [flow])
        if rows[0][0] is None:
            raise ResumeError(f"--resume: {flow!r} has no run to resume",
                              hint="run it once without --resume")
        return int(rows[0][0])
    try:
        run_id = int(text)
    except ValueError:
        raise ResumeError(f"--resume {run}: not a run id",
                          hint="give a run number, e.g. --resume 3, or FLOW/3") from None
    if not catalog.execute_read("SELECT 1 FROM runs WHERE flow = ? AND run_id = ?",
                                [flow, run_id]):
        raise ResumeError(f"--resume {run}: run {flow}/{run_id} does not exist",
                          hint=f"list the runs with: nbflow runs {flow}")
    return run_id


def adopt(home: Home, reused: Reused, flow: str, run_id: int) -> TaskManifest:
    """Record the reused task under the new run too, so later reads find it there.
    Not flushed to disk: the origin's manifest, which it copies, was."""
    manifest = replace(reused.manifest, flow=flow, run=run_id)
    write_manifest(home, manifest, fsync=False)
    return manifest
