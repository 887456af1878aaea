"""``nbflow why``: for each step, will it run or be reused, and if it runs, why.

Plans the notebook as ``nbflow execute`` would, against the catalog's cache, without
starting a kernel. Where a task would run, its key parts are compared with the most
recent task of the same step (and index) that recorded them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.errors import NbflowError
from nbflow.graph.build import Dag
from nbflow.graph.topo import topo_order
from nbflow.ids import StepName
from nbflow.store.home import Home

if TYPE_CHECKING:
    from nbflow.run.jobs import Job
    from nbflow.store.catalog import Catalog


@dataclass
class Verdict:
    step: str
    cell: int
    action: str  # "reused", "runs", "unknown"
    reasons: list[str] = field(default_factory=list)
    reused_from: list[str] = field(default_factory=list)
    tasks: int = 0


def explain_notebook(dag: Dag, params: dict[str, Any], home: Home) -> list[Verdict]:
    if not os.path.exists(home.catalog_path):  # nothing recorded yet; reading creates none
        return [Verdict(name, dag.step(name).cell, "runs",
                        [f"nothing has run with the home {home.url} yet"])
                for name in topo_order(dag)]
    # Only now the planner, the cache and the catalog (and with it DuckDB's engine).
    from nbflow.run.jobs import StepResults
    from nbflow.run.plan import Planner
    from nbflow.run.reuse import CacheIndex
    from nbflow.store.catalog import Catalog

    catalog = Catalog(home.catalog_path, home)
    spec = dag.spec
    cache = CacheIndex(catalog, home, [s.name for s in dag.steps])
    planner = Planner(dag, home, params, flow=spec.flow, run_id=0, max_num_splits=10**9,
                      directory=str(Path(spec.path).resolve().parent), keep_snapshots=False,
                      writes=False)
    steps = {s.name: s for s in dag.steps}
    earlier = _LatestParts(catalog, spec.flow)
    done: dict[StepName, StepResults] = {}
    runs: set[str] = set()
    verdicts = []
    for name in topo_order(dag):
        step = steps[name]
        upstream = [p for p in dag.parents[name] if p in runs]
        if upstream:
            runs.add(name)
            verdicts.append(Verdict(name, step.cell, "runs", [
                f"upstream step {p!r} runs, so its outputs are not known yet" for p in upstream]))
            continue
        try:
            jobs = planner.jobs(step, done)
        except NbflowError as exc:
            runs.add(name)
            verdicts.append(Verdict(name, step.cell, "unknown", [str(exc).splitlines()[0]]))
            continue
        hits = {} if step.magic.no_cache else cache.lookup([j.key for j in jobs if j.key])
        missing = [j for j in jobs if j.key not in hits]
        verdict = Verdict(name, step.cell, "runs" if missing else "reused", tasks=len(jobs),
                          reused_from=sorted({h.origin.rsplit("/", 2)[0] for h in hits.values()}))
        if step.magic.no_cache:
            verdict.reasons.append("the step is marked --no-cache")
            runs.add(name)
        elif missing:
            verdict.reasons = _reasons(earlier, catalog, home, spec.flow, missing)
            if len(jobs) > 1:
                verdict.reasons.insert(0, f"{len(missing)} of {len(jobs)} tasks run")
            runs.add(name)
        if not missing:
            done[name] = StepResults({j.index: hits[j.key].manifest for j in jobs if j.key})
        verdicts.append(verdict)
    return verdicts


class _LatestParts:
    """The key parts of each (step, index)'s most recent task that recorded them: one
    catalog read for the whole notebook, on first use (a read per step costs ms each)."""

    def __init__(self, catalog: Catalog, flow: str) -> None:
        self.catalog = catalog
        self.flow = flow
        self._rows: dict[tuple[str, int], tuple[int, str]] | None = None

    def get(self, step: str, index: int) -> tuple[int, str] | None:
        if self._rows is None:
            rows = self.catalog.execute_read(
                "SELECT step, task_index, run_id, cache_parts FROM ("
                "  SELECT step, task_index, run_id, cache_parts, row_number() OVER ("
                "    PARTITION BY step, task_index ORDER BY ended_at DESC NULLS LAST) AS k"
                "  FROM tasks WHERE flow = ? AND cache_parts IS NOT NULL) WHERE k = 1",
                [self.flow])
            self._rows = {(r[0], r[1]): (r[2], r[3]) for r in rows}
        return self._rows.get((step, index))


def _reasons(earlier: _LatestParts, catalog: Catalog, home: Home, flow: str,
             jobs: list[Job]) -> list[str]:
    from nbflow.run.cache import KeyParts, explain
    from nbflow.run.upstream import stale
    from nbflow.store.manifest import read_manifest

    job = jobs[0]
    found = earlier.get(job.step.name, job.index)
    if found is None:
        return ["it has never run (no earlier task of this step to reuse)"]
    run_id, parts = found
    reasons = explain(KeyParts.from_dict(json.loads(parts)), job.parts)
    if not reasons:
        manifest = read_manifest(home, flow, run_id, job.step.name, job.index)
        reasons = stale(manifest.lineage, catalog) if manifest is not None else []
    if not reasons:
        return [f"the matching task of {flow}/{run_id} did not succeed, or its stored "
                "results are gone"]
    return [f"{r} (since {flow}/{run_id})" for r in reasons]
