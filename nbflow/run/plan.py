"""Turning a ready step into jobs: inputs to load, outputs to persist, foreach elements, cache keys.

Shared by the scheduler (which runs or reuses the jobs) and ``nbflow why`` (which only
explains what would happen).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from nbflow.errors import DagError, NbflowError
from nbflow.graph.build import Dag
from nbflow.ids import ObjectHash, StepName
from nbflow.notebook.spec import StepSpec
from nbflow.run import cache, splits, upstream
from nbflow.run.filehash import FileHashes
from nbflow.run.jobs import Job, StepResults, describe_element, element_spec, input_specs
from nbflow.store.catalog import Catalog
from nbflow.store.home import Home
from nbflow.store.manifest import TaskManifest
from nbflow.store.objects import HashingWriter
from nbflow.store.serialize import iterable_elements, load_artifact, save_artifact


class Planner:
    def __init__(
        self, dag: Dag, home: Home, params: dict[str, Any], *, flow: str, run_id: int,
        max_num_splits: int, directory: str,
        split_runner: Callable[[StepSpec, str], list[Any]] | None = None,
        keep_snapshots: bool = True, cache_splits: bool = True, writes: bool = True,
    ) -> None:
        self.dag = dag
        self.spec = dag.spec
        self.home = home
        self.params = params
        self.flow = flow
        self.run_id = run_id
        self.max_num_splits = max_num_splits
        self.directory = directory
        self.split_runner = split_runner  # elements of a setup-defined --foreach (a kernel)
        self.setup_digest = cache.setup_digest(dag.spec)
        self.splits = self._foreach_sources()
        self.snapshots: dict[StepName, dict[str, str]] = {}
        self.keep_snapshots = keep_snapshots  # copy --snapshot files into the store
        self.cache_splits = cache_splits  # reuse a setup-defined foreach's listed elements
        # writes=False (nbflow why, the lab's freshness): plan without changing the home.
        # Foreach elements are hashed as they would be stored, not stored; file hashes
        # are not remembered.
        self.writes = writes
        self.elements_store: Any = home.objects if writes else HashOnlyStore()
        self._catalog: Catalog | None = None
        self.file_hashes = FileHashes(
            os.path.join(os.path.dirname(home.catalog_path), "file-hashes.json"))
        self.files: dict[StepName, dict[str, str]] = {}
        self.upstream: dict[StepName, dict[str, str]] = {}

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self.home.catalog_path)
        return self._catalog

    def _foreach_sources(self) -> dict[StepName, set[str]]:
        """For each step, the outputs that a downstream branch iterates over."""
        splits: dict[StepName, set[str]] = {}
        for step in self.dag.steps:
            if step.kind != "branch" or step.magic.foreach is None:
                continue
            binding = self.dag.bindings[step.name].get(step.magic.foreach)
            if binding is not None and binding.source == "step" and binding.step is not None:
                splits.setdefault(binding.step, set()).add(step.magic.foreach)
        return splits

    def jobs(self, step: StepSpec, done: dict[StepName, StepResults]) -> list[Job]:
        """Every task of ``step``, each with its load/persist plans and cache key."""
        base_inputs = input_specs(self.dag, step, done)
        snapshots = self.snapshots.setdefault(
            step.name, cache.snapshot_files(
                step, self.directory, self.home.objects if self.keep_snapshots else None,
                self.spec))
        if step.name not in self.files:
            self.files[step.name] = cache.read_files(
                self.spec, step, self.params, self.directory, self.file_hashes)
            if self.writes:
                self.file_hashes.save()
            self.upstream[step.name] = upstream.resolve(self.spec, step, self.catalog)
        outputs = sorted(step.public_outputs)
        if step.kind == "step":
            return [self._job(step, 0, base_inputs, outputs, snapshots)]
        elements = self._elements(step, done)
        if len(elements) > self.max_num_splits:
            raise DagError(
                f"--foreach {step.magic.foreach} has {len(elements)} elements, more than "
                f"--max-num-splits {self.max_num_splits}",
                notebook=self.spec.path, cell=step.cell, step=step.name,
                hint=f"pass --max-num-splits {len(elements)} (or more) if the fan-out is intended",
            )
        outputs = sorted(set(outputs) | {step.magic.as_})
        binding = self.dag.bindings[step.name][step.magic.foreach or ""]
        jobs = []
        for i, item in enumerate(elements):
            loop_var = element_spec(step, i, step.magic.foreach or "", elements, binding.step)
            job = self._job(step, i, [*base_inputs, loop_var], outputs, snapshots)
            job.element = describe_element(item)
            jobs.append(job)
        return jobs

    def _job(self, step: StepSpec, index: int, inputs: list[dict[str, Any]],
             outputs: list[str], snapshots: dict[str, str]) -> Job:
        common = {"home": self.home.url, "flow": self.flow, "run": self.run_id,
                  "step": step.name, "index": index}
        parts = cache.key_parts(self.spec, step, setup=self.setup_digest, params=self.params,
                                load_inputs=inputs, snapshots=snapshots,
                                files=self.files[step.name],
                                upstream=self.upstream[step.name])
        return Job(
            step=step,
            index=index,
            load_plan={**common, "inputs": inputs},
            persist_plan={**common, "outputs": outputs,
                          "splits": sorted(self.splits.get(step.name, ()))},
            parts=parts,
            key=parts.key(),
        )

    def _elements(self, step: StepSpec, done: dict[StepName, StepResults]) -> list[Any]:
        name = step.magic.foreach or ""
        binding = self.dag.bindings[step.name][name]
        if binding.source == "parameter":
            value = self.params[name]
            if not isinstance(value, (list, tuple)):
                raise DagError(
                    f"--foreach {name}: parameter {name!r} is a {type(value).__name__}, not a list",
                    notebook=self.spec.path, cell=step.cell, step=step.name,
                    hint=f"give {name!r} a list value, e.g. -p {name} '[1, 2, 3]'",
                )
            return [save_artifact(self.elements_store, f"{name}[{i}]", v) for i, v in enumerate(value)]
        if binding.source == "branch" and binding.step is not None:
            return done[binding.step].ordered()
        if binding.source == "step" and binding.step is not None:
            manifest = done[binding.step].manifests[0]
            if name in manifest.splits:
                return list(manifest.splits[name])
            return self._split_artifact(step, binding.step, manifest)
        return self._setup_elements(step, name)

    def _setup_elements(self, step: StepSpec, name: str) -> list[Any]:
        """A setup-defined foreach: the elements listed by an earlier run with the same
        setup, or by a kernel that runs the setup cells now."""
        key = splits.split_key(self.spec, step, name, setup=self.setup_digest,
                               params=self.params)
        found = splits.remembered(self.home, self.flow, key) if self.cache_splits else None
        if found is not None:
            return list(found)
        if self.split_runner is None:
            raise DagError(
                f"--foreach {name}: a setup-defined name has elements only once a kernel runs "
                "the setup cells", notebook=self.spec.path, cell=step.cell, step=step.name,
                hint="nbflow execute finds them; produce the list in a %%step to plan ahead",
            )
        records = self.split_runner(step, name)
        splits.remember(self.home, self.flow, key, records, f"{self.flow}/{self.run_id}")
        return list(records)

    def _split_artifact(self, step: StepSpec, producer: StepName,
                        manifest: TaskManifest) -> list[Any]:
        """The elements of an artifact whose producer did not split it when it ran (it was
        cached, cloned or recorded live before this branch existed): loaded here, from the
        store, rather than by running the producer again."""
        name = step.magic.foreach or ""
        record = manifest.artifact(name)
        where: dict[str, Any] = {"notebook": self.spec.path, "cell": step.cell, "step": step.name}
        if record is None:
            raise DagError(f"--foreach {name}: step {producer!r} did not bind {name!r} "
                           "when it ran", **where,
                           hint=f"make step {producer!r} always assign {name!r}")
        try:
            value = load_artifact(self.home.objects, record, step=producer)
        except NbflowError as exc:
            raise DagError(f"--foreach {name}: the elements of {name!r} from step "
                           f"{producer!r} cannot be read: {exc}", **where,
                           hint=f"make {name!r} serializable, or re-run step {producer!r} "
                           "with --no-cache on its %%step line") from None
        items = iterable_elements(value)
        if items is None:
            raise DagError(
                f"--foreach {name}: step {producer!r} did not produce an iterable {name!r} "
                f"(it is a {record.type})", **where,
                hint=f"make step {producer!r} bind {name!r} to a list, tuple or other iterable",
            )
        return [save_artifact(self.elements_store, f"{name}[{i}]", v) for i, v in enumerate(items)]


class HashOnlyStore:
    """Where a plan that must not write "stores" foreach elements: each gets the hash
    and size it would have in the object store (the task's key needs it), and the
    bytes are dropped."""

    def put_stream(self, write: Callable[[BinaryIO], object]) -> tuple[ObjectHash, int]:
        writer = HashingWriter(cast(BinaryIO, _Discard()))
        write(writer)  # type: ignore[arg-type]
        return writer.hexdigest(), writer.size


class _Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return memoryview(data).nbytes
