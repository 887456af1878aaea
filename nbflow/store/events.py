"""What the driver tells the catalog: a run's record and task/run state changes.

Plain dataclasses (picklable, stdlib only) so kernels, Dask workers and the
scheduler can build them without importing DuckDB; ``Catalog.apply`` writes a
batch of them in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from nbflow.store.serialize import ArtifactRecord

RunStatus = Literal["running", "succeeded", "failed", "cancelled", "crashed"]
TaskStatus = Literal["pending", "running", "succeeded", "failed", "cached", "cloned", "cancelled"]


@dataclass
class RunRecord:
    """A new run; ``Catalog.new_run`` allocates its id. Times are epoch seconds."""

    flow: str
    notebook_path: str | None = None
    notebook_hash: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    user: str | None = None
    host: str | None = None
    python: str | None = None
    packages: dict[str, str] = field(default_factory=dict)
    started_at: float | None = None
    status: RunStatus = "running"
    driver_pid: int | None = None
    driver_host: str | None = None
    origin_run: int | None = None  # the run a --resume cloned from
    params: dict[str, Any] = field(default_factory=dict)
    param_types: dict[str, str] = field(default_factory=dict)  # default: the value's type
    tags: list[str] = field(default_factory=list)
    # The planned DAG: dicts with step, kind, cell, foreach, as_var, parents, inputs, outputs.
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TaskStarted:
    flow: str
    run_id: int
    step: str
    index: int
    foreach_element: Any = None
    pid: int | None = None
    started_at: float | None = None
    attempt: int = 1
    kernel_mode: str | None = None  # e.g. "zygote", "pool", "fresh", "dask"
    queued_at: float | None = None  # when it was handed to a worker (its parents done)


@dataclass
class TaskFinished:
    """A task's final state; upserts its row and replaces its artifacts."""

    flow: str
    run_id: int
    step: str
    index: int
    status: TaskStatus
    ended_at: float | None = None
    duration_s: float | None = None
    peak_memory: int | None = None
    error: str | None = None
    cache_key: str | None = None
    cached_from: str | None = None  # pathspec FLOW/RUN/STEP/INDEX of the reused task
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    python: str | None = None
    packages: dict[str, str] = field(default_factory=dict)
    started_at: float | None = None  # only used when no TaskStarted was recorded
    foreach_element: Any = None  # for tasks never started (cached, cloned); None keeps the row's
    cache_parts: dict[str, Any] | None = None  # what cache_key hashes, for `nbflow why`
    queued_at: float | None = None  # only used when no TaskStarted was recorded
    lineage: list[dict[str, Any]] = field(default_factory=list)  # other runs' data it read


@dataclass
class RunFinished:
    flow: str
    run_id: int
    status: RunStatus
    ended_at: float | None = None
    error: str | None = None


CatalogEvent = TaskStarted | TaskFinished | RunFinished
