"""One task identity across both worlds: a ``%%step`` run live is recorded as a headless
task of the same cache key would be, so ``nbflow execute`` reuses it instead of running it.

Each kernel records into one run of the notebook's flow, tagged ``interactive``. A step is
recorded only when its code is the code saved in the notebook file (otherwise the key
would describe code the file does not have) and the kernel knows its notebook file.
Inputs and outputs are stored as artifacts exactly as a task stores them, so their content
hashes, and with them the keys of downstream steps, agree with a headless run's.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from nbflow.notebook.spec import NotebookSpec, StepSpec


@dataclass
class Recording:
    """The live kernel's run, created on its first recorded step."""

    notebook: str
    home: Any
    flow: str
    run_id: int | None = None
    spec_mtime: float = -1.0
    spec: NotebookSpec | None = None
    dag: Any = None
    notes: list[str] = field(default_factory=list)


def prepare_step(recording: Recording, name: str, body: str, user_ns: dict[str, Any]
                 ) -> tuple[StepSpec, Any] | None:
    """Before the body runs: the step's saved spec and cache key parts, or None when this
    execution cannot be recorded (unsaved edits, an input the kernel does not hold)."""
    from nbflow.run import cache

    spec, dag = _spec(recording)
    step = next((s for s in spec.steps if s.name == name), None)
    if step is None or cache.normalized_source(step.source) != cache.normalized_source(body):
        return None  # the saved file has other code: its key would not describe this run
    inputs = _input_specs(recording, dag, step, user_ns)
    if inputs is None:
        return None
    params = {p.name: user_ns.get(p.name) for p in spec.parameters}
    directory = str(Path(recording.notebook).resolve().parent)
    from nbflow.run import upstream
    from nbflow.run.filehash import FileHashes
    from nbflow.store.catalog import Catalog

    hashes = FileHashes(os.path.join(os.path.dirname(recording.home.catalog_path),
                                     "file-hashes.json"))
    parts = cache.key_parts(
        spec, step, setup=cache.setup_digest(spec), params=params, load_inputs=inputs,
        snapshots=cache.snapshot_files(step, directory, recording.home.objects, spec),
        files=cache.read_files(spec, step, params, directory, hashes),
        upstream=upstream.resolve(spec, step, Catalog(recording.home.catalog_path)),
    )
    hashes.save()
    lineage = sys.modules.get("nbflow.client.lineage")
    if lineage is not None:  # what this cell reads of other runs is its own lineage
        lineage.clear()
    return step, parts


def record_step(recording: Recording, step: StepSpec, parts: Any, user_ns: dict[str, Any],
                started: float) -> str:
    """After the body succeeded: store its outputs and record the task; its pathspec."""
    from nbflow.store.catalog import Catalog
    from nbflow.store.events import TaskFinished
    from nbflow.store.manifest import TaskManifest, write_manifest
    from nbflow.store.serialize import save_artifact

    catalog = Catalog(recording.home.catalog_path, recording.home)
    if recording.run_id is None:
        recording.run_id = catalog.new_run(_run_record(recording))
    artifacts = [save_artifact(recording.home.objects, name, user_ns[name])
                 for name in sorted(step.public_outputs) if name in user_ns]
    ended = time.time()
    lineage = sys.modules.get("nbflow.client.lineage")
    manifest = TaskManifest(flow=recording.flow, run=recording.run_id, step=step.name, index=0,
                            artifacts=artifacts, started=started, ended=ended, pid=os.getpid(),
                            lineage=lineage.collected() if lineage is not None else [])
    write_manifest(recording.home, manifest)
    catalog.apply([TaskFinished(
        flow=recording.flow, run_id=recording.run_id, step=step.name, index=0,
        status="succeeded", started_at=started, ended_at=ended, duration_s=ended - started,
        cache_key=parts.key(), cache_parts=parts.to_dict(), artifacts=artifacts,
        lineage=list(manifest.lineage),
    )])
    catalog.apply_sql([("UPDATE runs SET ended_at = ? WHERE flow = ? AND run_id = ?",
                        [_utc(ended), recording.flow, recording.run_id])],
                      run=(recording.flow, recording.run_id))
    return f"{recording.flow}/{recording.run_id}/{step.name}/0"


def _utc(epoch: float) -> Any:
    from datetime import datetime

    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _spec(recording: Recording) -> tuple[NotebookSpec, Any]:
    from nbflow.graph.build import build_dag
    from nbflow.notebook.reader import read_notebook

    mtime = os.path.getmtime(recording.notebook)
    if recording.spec is None or mtime != recording.spec_mtime:
        recording.spec = read_notebook(recording.notebook)
        recording.dag = build_dag(recording.spec, check=False)
        recording.spec_mtime = mtime
    return recording.spec, recording.dag


def _input_specs(recording: Recording, dag: Any, step: StepSpec, user_ns: dict[str, Any]
                 ) -> list[dict[str, Any]] | None:
    """The step's inputs from other steps, stored from the live values (before the body
    runs), in the shape of a task's load plan."""
    from nbflow.store.serialize import save_artifact

    store = recording.home.objects
    specs = []
    for name, binding in sorted(dag.bindings[step.name].items()):
        if binding.source not in ("step", "branch"):
            continue
        if name not in user_ns:
            return None
        value = user_ns[name]
        if binding.source == "branch":
            tasks = [{"index": i, "records": {n: save_artifact(store, n, getattr(ns, n)).to_dict()
                                              for n in dir(ns)}}
                     for i, ns in enumerate(value)]
            specs.append({"name": name, "kind": "join", "tasks": tasks})
        else:
            specs.append({"name": name, "kind": "artifact",
                          "record": save_artifact(store, name, value).to_dict()})
    return specs


def _run_record(recording: Recording) -> Any:
    from nbflow.run.driver import run_record

    spec, dag = _spec(recording)
    return run_record(spec, dag, params={}, tags=["interactive"], status="succeeded")
