"""The run loop: start every ready task, up to ``max_workers`` at once, until nothing can run.

A step is ready when every parent step succeeded. Its tasks are reused when they can
be (``--resume`` clones, cache hits: no kernel) and run otherwise. A failed task is
retried up to its step's ``--retry``; a step that still fails stops only its
descendants, so independent work finishes and is recorded. Ctrl-C cancels what has
not started, kills the running kernels and marks the run cancelled.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
import traceback as tb
from dataclasses import dataclass, field, replace
from typing import Any

from nbflow.errors import NbflowError, TaskFailed
from nbflow.graph.build import Dag
from nbflow.graph.topo import descendants, topo_order
from nbflow.ids import StepName
from nbflow.notebook.spec import StepSpec
from nbflow.run.executor import TaskExecutor, TaskOutcome
from nbflow.run.jobs import Job, StepResults
from nbflow.run.plan import Planner
from nbflow.run.progress import Progress
from nbflow.run.recorder import Recorder
from nbflow.run.reuse import CacheIndex, ResumePlan, Reused, adopt
from nbflow.store import events as ev
from nbflow.store.manifest import TaskManifest


@dataclass
class RunSummary:
    status: str  # succeeded | failed | cancelled
    step_status: dict[StepName, str]
    errors: list[NbflowError] = field(default_factory=list)
    done: dict[StepName, StepResults] = field(default_factory=dict)
    outcomes: list[TaskOutcome] = field(default_factory=list)
    reused: dict[str, int] = field(default_factory=dict)  # "cached"/"cloned" -> task count
    split_kernels: list[str] = field(default_factory=list)  # setup foreach names a kernel listed
    setup_cells: list[dict[str, Any]] | None = None  # run once in a template: their outputs


class Scheduler:
    def __init__(
        self,
        dag: Dag,
        planner: Planner,
        executor: TaskExecutor,
        recorder: Recorder,
        progress: Progress,
        *,
        max_workers: int,
        cache: CacheIndex | None = None,
        resume: ResumePlan | None = None,
    ) -> None:
        self.dag = dag
        self.planner = planner
        self.executor = executor
        self.recorder = recorder
        self.progress = progress
        self.home = planner.home
        self.max_workers = max(1, max_workers)
        self.cache = cache
        self.resume = resume
        self.flow = executor.flow
        self.run_id = executor.run_id
        self.status: dict[StepName, str] = {s.name: "waiting" for s in dag.steps}
        self.done: dict[StepName, StepResults] = {}
        self.remaining: dict[StepName, int] = {}
        self.errors: list[NbflowError] = []
        self.outcomes: list[TaskOutcome] = []
        self.reused: dict[str, int] = {}
        self._fallbacks: set[str] = set()
        self._ran_again: set[StepName] = set()  # with --resume: steps not (fully) cloned

    def _ready(self) -> list[StepSpec]:
        steps = {s.name: s for s in self.dag.steps}
        return [
            steps[name]
            for name in topo_order(self.dag)
            if self.status[name] == "waiting"
            and all(self.status[p] == "succeeded" for p in self.dag.parents[name])
        ]

    # -- running --------------------------------------------------------------

    def run(self) -> RunSummary:
        pool = cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="nbflow-task")
        running: dict[cf.Future[TaskOutcome], Job] = {}
        try:
            while True:
                ready = self._ready()
                while ready:  # reused steps finish at once and may make others ready
                    for step in ready:
                        for job in self._expand(step):
                            running[self._submit(pool, job)] = job
                    ready = self._ready()
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
        """Plan the step's tasks, settle the reusable ones; return those to run."""
        try:
            jobs = self.planner.jobs(step, self.done)
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
        reused = self._reusable(step, jobs)
        for job in jobs:
            if job.index in reused:
                self._reuse(job, reused[job.index])
        return [job for job in jobs if job.index not in reused]

    def _reusable(self, step: StepSpec, jobs: list[Job]) -> dict[int, Reused]:
        found: dict[int, Reused] = {}
        resume = self.resume
        if resume is not None and not self._parent_ran(step):
            for job in jobs:
                clone = resume.reuse(self.home, self.flow, step.name, job.index, job.key)
                if clone is not None:
                    found[job.index] = clone
        if len(found) < len(jobs):
            self._ran_again.add(step.name)
        if resume is not None and step.name in resume.rerun_steps:
            return found  # --from: re-executed, as asked, not served from the cache
        if self.cache is not None and not step.magic.no_cache:
            wanted = {job.key: job.index for job in jobs if job.index not in found}
            for key, hit in self.cache.lookup([k for k in wanted if k]).items():
                found[wanted[key]] = hit
        return found

    def _parent_ran(self, step: StepSpec) -> bool:
        """With --resume: an upstream step ran again, so cloning this one would hand on
        results computed from the origin's inputs, not from the new ones."""
        return any(p in self._ran_again for p in self.dag.parents[step.name])

    def _reuse(self, job: Job, reused: Reused) -> None:
        manifest = adopt(self.home, reused, self.flow, self.run_id)
        now = time.time()
        self.recorder.emit(ev.TaskFinished(
            flow=self.flow, run_id=self.run_id, step=job.step.name, index=job.index,
            status=reused.status,  # type: ignore[arg-type]
            started_at=now, ended_at=now, duration_s=0.0, queued_at=now,
            peak_memory=None, error=None, cache_key=job.key, cached_from=reused.origin,
            artifacts=list(manifest.artifacts), python=manifest.python,
            packages=dict(manifest.packages), foreach_element=job.element,
            cache_parts=job.parts.to_dict() if job.parts else None,
            lineage=list(manifest.lineage),
        ))
        self.reused[reused.status] = self.reused.get(reused.status, 0) + 1
        self.outcomes.append(TaskOutcome(job, manifest, None, now, now, None, None,
                                         origin=reused.origin))
        self.progress.finished(job.step.name, job.index, reused.status, 0.0,
                               f"from {reused.origin}")
        self._task_succeeded(job, manifest)

    def _submit(self, pool: cf.ThreadPoolExecutor, job: Job) -> cf.Future[TaskOutcome]:
        job.queued_at = time.time()
        return pool.submit(self.executor.run, job, self._on_started)

    def _on_started(self, job: Job, pid: int, mode: str, fallback: str | None = None,
                    started: float | None = None) -> None:
        setup_note = getattr(self.executor, "setup_note", None)
        if setup_note and setup_note not in self._fallbacks:
            self._fallbacks.add(setup_note)  # once: why every task replays the setup cells
            self.progress.message(f"note: the setup cells run again in every task, not once "
                                  f"before they fork: {setup_note}")
        if fallback and fallback not in self._fallbacks:
            self._fallbacks.add(fallback)  # say once why kernels start the slow way
            self.progress.message(f"note: step {job.step.name!r} starts ordinary kernels, "
                                  f"not forked ones: {fallback}")
        self.progress.started(job.step.name, job.index, pid, mode, job.attempt)
        self.recorder.emit(ev.TaskStarted(
            flow=self.flow, run_id=self.run_id, step=job.step.name, index=job.index,
            foreach_element=job.element, pid=pid,
            started_at=started if started is not None else time.time(),
            attempt=job.attempt + 1, kernel_mode=mode, queued_at=job.queued_at,
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
            self._record_finished(outcome, "succeeded")
            self.progress.finished(step.name, job.index, "succeeded", seconds)
            for warning in outcome.manifest.warnings:
                self.progress.message(f"warning: {warning}")
            self._task_succeeded(job, outcome.manifest)
            return None
        error = outcome.error or TaskFailed("unknown failure", step=step.name)
        self._record_finished(outcome, "failed")
        if job.attempt < step.magic.retry:
            why = str(error).splitlines()[0] if str(error) else type(error).__name__
            self.progress.finished(step.name, job.index, "failed", seconds,
                                   f"retrying ({job.attempt + 1}/{step.magic.retry}) "
                                   f"after: {why}")
            return replace(job, attempt=job.attempt + 1)
        self.progress.finished(step.name, job.index, "failed", seconds)
        self.remaining[step.name] -= 1
        self._step_failed(step, error)
        return None

    def _task_succeeded(self, job: Job, manifest: TaskManifest) -> None:
        name = job.step.name
        self.done[name].manifests[job.index] = manifest
        self.remaining[name] -= 1
        if self.remaining[name] == 0 and self.status[name] == "running":
            self.status[name] = "succeeded"

    def _record_finished(self, outcome: TaskOutcome, status: str) -> None:
        m = outcome.manifest
        job = outcome.job
        self.recorder.emit(ev.TaskFinished(
            flow=self.flow, run_id=self.run_id, step=job.step.name, index=job.index,
            status=status,  # type: ignore[arg-type]
            started_at=outcome.started, ended_at=outcome.ended,
            duration_s=outcome.ended - outcome.started, queued_at=job.queued_at,
            peak_memory=m.peak_memory if m else None,
            error=str(outcome.error) if outcome.error else None,
            cache_key=job.key, cached_from=None,
            artifacts=list(m.artifacts) if m else [],
            python=m.python if m else None,
            packages=dict(m.packages) if m else {},
            cache_parts=job.parts.to_dict() if job.parts else None,
            lineage=list(m.lineage) if m else [],
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
        self.executor.close()
        pool.shutdown(wait=True, cancel_futures=True)
        for future, job in running.items():
            if _completed(future):  # it finished while being cancelled: keep its result
                outcome = future.result()
                self.outcomes.append(outcome)
                self._record_finished(outcome, "succeeded")
                assert outcome.manifest is not None
                self._task_succeeded(job, outcome.manifest)
                continue
            self.recorder.emit(ev.TaskFinished(
                flow=self.flow, run_id=self.run_id, step=job.step.name, index=job.index,
                status="cancelled", ended_at=time.time(), error="cancelled by the user",
                cache_key=job.key,
            ))
        for name, state in self.status.items():
            if state in ("waiting", "running"):
                self.status[name] = "cancelled"

    def _summary(self, status: str) -> RunSummary:
        self.progress.close()
        return RunSummary(status, dict(self.status), self.errors, self.done, self.outcomes,
                          self.reused, list(getattr(self.executor, "split_kernels", [])),
                          getattr(self.executor, "setup_executed", None))


def _completed(future: cf.Future[TaskOutcome]) -> bool:
    """The task ran to its end and stored its outputs (its manifest is written)."""
    if not future.done() or future.cancelled() or future.exception() is not None:
        return False
    outcome = future.result()
    return outcome.error is None and outcome.manifest is not None
