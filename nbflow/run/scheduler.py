"""The run loop: start every ready task, up to ``max_workers`` at once, until nothing can run.

A step is ready when every parent step succeeded. A failed task is retried up to
its step's ``--retry``; a step that still fails stops only its descendants, so
independent work finishes and is recorded. Ctrl-C cancels what has not started,
kills the running kernels and marks the run cancelled.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
import traceback as tb
from dataclasses import dataclass, field
from typing import Any

from nbflow.errors import DagError, NbflowError, TaskFailed
from nbflow.graph.build import Dag
from nbflow.graph.topo import descendants, topo_order
from nbflow.ids import StepName
from nbflow.notebook.spec import StepSpec
from nbflow.run.executor import TaskExecutor, TaskOutcome
from nbflow.run.jobs import (
    Job,
    StepResults,
    describe_element,
    element_spec,
    input_specs,
)
from nbflow.run.progress import Progress
from nbflow.run.recorder import Recorder
from nbflow.store import events as ev
from nbflow.store.home import Home
from nbflow.store.serialize import save_artifact


@dataclass
class RunSummary:
    status: str  # succeeded | failed | cancelled
    step_status: dict[StepName, str]
    errors: list[NbflowError] = field(default_factory=list)
    done: dict[StepName, StepResults] = field(default_factory=dict)
    outcomes: list[TaskOutcome] = field(default_factory=list)


class Scheduler:
    def __init__(
        self,
        dag: Dag,
        executor: TaskExecutor,
        recorder: Recorder,
        progress: Progress,
        *,
        home: Home,
        params: dict[str, Any],
        max_workers: int,
        max_num_splits: int,
    ) -> None:
        self.dag = dag
        self.executor = executor
        self.recorder = recorder
        self.progress = progress
        self.home = home
        self.params = params
        self.max_workers = max(1, max_workers)
        self.max_num_splits = max_num_splits
        self.flow = executor.flow
        self.run_id = executor.run_id
        self.status: dict[StepName, str] = {s.name: "waiting" for s in dag.steps}
        self.done: dict[StepName, StepResults] = {}
        self.remaining: dict[StepName, int] = {}
        self.errors: list[NbflowError] = []
        self.outcomes: list[TaskOutcome] = []
        self._splits = self._foreach_sources()

    # -- planning -------------------------------------------------------------

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

    def _ready(self) -> list[StepSpec]:
        order = topo_order(self.dag)
        steps = {s.name: s for s in self.dag.steps}
        return [
            steps[name]
            for name in order
            if self.status[name] == "waiting"
            and all(self.status[p] == "succeeded" for p in self.dag.parents[name])
        ]

    def _jobs(self, step: StepSpec) -> list[Job]:
        base_inputs = input_specs(self.dag, step, self.done)
        outputs = sorted(step.public_outputs)
        if step.kind == "step":
            return [self._job(step, 0, base_inputs, outputs)]
        elements = self._elements(step)
        if len(elements) > self.max_num_splits:
            raise DagError(
                f"--foreach {step.magic.foreach} has {len(elements)} elements, more than "
                f"--max-num-splits {self.max_num_splits}",
                cell=step.cell,
                step=step.name,
                hint=f"pass --max-num-splits {len(elements)} (or more) if the fan-out is intended",
            )
        outputs = sorted(set(outputs) | {step.magic.as_})
        jobs = []
        for i in range(len(elements)):
            binding = self.dag.bindings[step.name][step.magic.foreach or ""]
            loop_var = element_spec(step, i, step.magic.foreach or "", elements, binding.step)
            job = self._job(step, i, [*base_inputs, loop_var], outputs)
            job.element = describe_element(elements[i])
            jobs.append(job)
        return jobs

    def _job(self, step: StepSpec, index: int, inputs: list[dict[str, Any]],
             outputs: list[str]) -> Job:
        common = {"home": self.home.url, "flow": self.flow, "run": self.run_id,
                  "step": step.name, "index": index}
        return Job(
            step=step,
            index=index,
            load_plan={**common, "inputs": inputs},
            persist_plan={**common, "outputs": outputs,
                          "splits": sorted(self._splits.get(step.name, ()))},
        )

    def _elements(self, step: StepSpec) -> list[Any]:
        name = step.magic.foreach or ""
        binding = self.dag.bindings[step.name][name]
        if binding.source == "parameter":
            value = self.params[name]
            self._check_iterable(step, name, value, f"parameter {name!r}")
            return [save_artifact(self.home.objects, f"{name}[{i}]", v) for i, v in enumerate(value)]
        if binding.source == "branch" and binding.step is not None:
            return self.done[binding.step].ordered()
        if binding.source == "step" and binding.step is not None:
            manifest = self.done[binding.step].manifests[0]
            if name not in manifest.splits:
                raise DagError(
                    f"--foreach {name}: step {binding.step!r} did not produce an iterable {name!r}",
                    cell=step.cell,
                    step=step.name,
                    hint=f"make step {binding.step!r} bind {name!r} to a list, tuple or other iterable",
                )
            return list(manifest.splits[name])
        raise DagError(
            f"--foreach {name}: iterating over a name defined in a setup cell is not supported; "
            "the driver cannot see setup values",
            cell=step.cell,
            step=step.name,
            hint=f"produce {name!r} in a %%step (or make it a parameter) before this branch",
        )

    @staticmethod
    def _check_iterable(step: StepSpec, name: str, value: Any, what: str) -> None:
        if not isinstance(value, (list, tuple)):
            raise DagError(
                f"--foreach {name}: {what} is a {type(value).__name__}, not a list",
                cell=step.cell,
                step=step.name,
                hint=f"give {name!r} a list value, e.g. -p {name} '[1, 2, 3]'",
            )

    # -- running --------------------------------------------------------------

    def run(self) -> RunSummary:
        pool = cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="nbflow-task")
        running: dict[cf.Future[TaskOutcome], Job] = {}
        try:
            while True:
                for step in self._ready():
                    for job in self._expand(step):
                        running[self._submit(pool, job)] = job
                if not running:
                    break
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    job = running.pop(future)
                    retry = self._finish(job, future)
                    if retry is not None:
                        running[self._submit(pool, retry)] = retry
        except KeyboardInterrupt:
            self._cancel(pool, running)
            return self._summary("cancelled")
        pool.shutdown(wait=True)
        failed = any(s != "succeeded" for s in self.status.values())
        return self._summary("failed" if failed else "succeeded")

    def _expand(self, step: StepSpec) -> list[Job]:
        try:
            jobs = self._jobs(step)
        except NbflowError as exc:
            self._step_failed(step, exc)
            return []
        self.status[step.name] = "running"
        self.remaining[step.name] = len(jobs)
        self.done[step.name] = StepResults()
        if step.kind == "branch":
            self.progress.fan_out(step.name, len(jobs))
        if not jobs:
            self.status[step.name] = "succeeded"
        return jobs

    def _submit(self, pool: cf.ThreadPoolExecutor, job: Job) -> cf.Future[TaskOutcome]:
        return pool.submit(self.executor.run, job, self._on_started)

    def _on_started(self, job: Job, pid: int, mode: str) -> None:
        self.progress.started(job.step.name, job.index, pid, mode, job.attempt)
        self.recorder.emit(ev.TaskStarted(
            flow=self.flow, run_id=self.run_id, step=job.step.name, index=job.index,
            foreach_element=job.element, pid=pid, started_at=_now(), attempt=job.attempt + 1,
            kernel_mode=mode,
        ))

    def _finish(self, job: Job, future: cf.Future[TaskOutcome]) -> Job | None:
        try:
            outcome = future.result()
        except Exception as exc:  # a bug on our side must still end the task cleanly
            outcome = TaskOutcome(job, None, TaskFailed(
                f"nbflow failed to run the task: {exc}\n{tb.format_exc()}",
                cell=job.step.cell, step=job.step.name, index=job.index), 0.0, 0.0, None, None)
        self.outcomes.append(outcome)
        step = job.step
        seconds = outcome.ended - outcome.started
        if outcome.error is None and outcome.manifest is not None:
            self.done[step.name].manifests[job.index] = outcome.manifest
            self._record_finished(outcome, "succeeded")
            self.progress.finished(step.name, job.index, "succeeded", seconds)
            for warning in outcome.manifest.warnings:
                self.progress.message(f"warning: {warning}")
            self.remaining[step.name] -= 1
            if self.remaining[step.name] == 0 and self.status[step.name] == "running":
                self.status[step.name] = "succeeded"
            return None
        error = outcome.error or TaskFailed("unknown failure", step=step.name)
        if job.attempt < step.magic.retry:
            self._record_finished(outcome, "failed")
            self.progress.finished(step.name, job.index, "failed", seconds,
                                   f"retrying ({job.attempt + 1}/{step.magic.retry})")
            return Job(step, job.index, job.load_plan, job.persist_plan, job.element,
                       job.attempt + 1)
        self._record_finished(outcome, "failed")
        self.progress.finished(step.name, job.index, "failed", seconds)
        self.remaining[step.name] -= 1
        self._step_failed(step, error)
        return None

    def _record_finished(self, outcome: TaskOutcome, status: str) -> None:
        m = outcome.manifest
        job = outcome.job
        self.recorder.emit(ev.TaskFinished(
            flow=self.flow, run_id=self.run_id, step=job.step.name, index=job.index,
            status=status, ended_at=_now(), duration_s=outcome.ended - outcome.started,
            peak_memory=m.peak_memory if m else None,
            error=str(outcome.error) if outcome.error else None,
            cache_key=None, cached_from=None,
            artifacts=list(m.artifacts) if m else [],
            python=m.python if m else None,
            packages=dict(m.packages) if m else {},
        ))

    def _step_failed(self, step: StepSpec, error: NbflowError) -> None:
        if self.status[step.name] != "failed":
            self.errors.append(error)
            self.progress.message(f"FAILED {error}")
            tb_text = getattr(error, "fields", {}).get("traceback")
            if tb_text:
                self.progress.message(tb_text)
        self.status[step.name] = "failed"
        for name in descendants(self.dag, step.name):
            if self.status[name] == "waiting":
                self.status[name] = "skipped"

    def _cancel(self, pool: cf.ThreadPoolExecutor, running: dict[Any, Job]) -> None:
        self.progress.message("interrupted: cancelling tasks and stopping kernels")
        for future in running:
            future.cancel()
        self.executor.launcher.close()
        pool.shutdown(wait=True, cancel_futures=True)
        for job in running.values():
            self.recorder.emit(ev.TaskFinished(
                flow=self.flow, run_id=self.run_id, step=job.step.name, index=job.index,
                status="cancelled", ended_at=_now(), duration_s=None, peak_memory=None,
                error="cancelled by the user", cache_key=None, cached_from=None, artifacts=[],
                python=None, packages={},
            ))
        for name, state in self.status.items():
            if state in ("waiting", "running"):
                self.status[name] = "cancelled"

    def _summary(self, status: str) -> RunSummary:
        self.progress.close()
        return RunSummary(status, dict(self.status), self.errors, self.done, self.outcomes)


def _now() -> float:
    return time.time()
