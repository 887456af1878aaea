"""The driver's side of the dask backend: submit each task, wait for its outcome.

Each scheduler thread submits one task and waits for it, so the run loop is the same
as locally. Workers announce a task's start through a Dask event topic; a second start
of the same submission means Dask re-ran it after losing a worker, which is recorded
as a retry with the reason.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from nbflow.backends.dask.spec import STARTED_TOPIC, task_spec
from nbflow.errors import NbflowError, TaskFailed
from nbflow.kernel.tasknb import build_task_notebook
from nbflow.run.executor import StartedCallback, TaskExecutor, TaskOutcome
from nbflow.run.jobs import Job
from nbflow.store import events as ev
from nbflow.store.manifest import TaskManifest


class RemoteError(Exception):
    """A failure on a worker, rebuilt from its description for the error mapping."""


@dataclass
class _Submission:
    job: Job
    on_started: StartedCallback
    worker: str | None = None
    started: float = 0.0


class DaskExecutor(TaskExecutor):
    def __init__(self, *, client: Any, progress: Any, recorder: Any, preload: list[str],
                 **base: Any) -> None:
        super().__init__(**base)
        self.client = client
        self.progress = progress
        self.recorder = recorder
        self.preload = preload
        self._submissions: dict[str, _Submission] = {}
        self._futures: dict[str, Any] = {}
        self._sub_lock = threading.Lock()
        self._address = str(getattr(client.scheduler, "address", None) or "?")
        client.subscribe_topic(STARTED_TOPIC, self._on_event)
        from nbflow.backends.dask.worker import run_key, warm_up

        self._run_key = run_key(self.flow, self.run_id)
        try:  # not waited for: the fork servers start while the driver plans
            client.run(warm_up, self._run_key, self.cwd, list(preload), wait=False)
        except Exception:  # a worker that cannot warm up still runs tasks, only slower
            pass

    def run(self, job: Job, on_started: StartedCallback) -> TaskOutcome:
        key = (f"nbflow-{self.flow}-{self.run_id}-{job.step.name}-{job.index}-"
               f"a{job.attempt}-{uuid.uuid4().hex[:8]}")  # unique per attempt
        spec = task_spec(
            notebook=build_task_notebook(self.spec, job.step, self.params, job.load_plan,
                                         job.persist_plan),
            kernel=job.step.magic.kernel or self.spec.kernel_name, home=self.home.url,
            flow=self.flow, run_id=self.run_id, step=job.step.name, index=job.index,
            attempt=job.attempt, timeout=job.step.magic.timeout, cwd=self.cwd,
            preload=self.preload, key=key, catalog=self.home.catalog_path,
        )
        with self._sub_lock:
            self._submissions[key] = _Submission(job, on_started)
        submitted = time.time()
        try:
            result = self._wait(job, key, spec)
        finally:
            with self._sub_lock:
                self._submissions.pop(key, None)
                self._futures.pop(key, None)
        if isinstance(result, NbflowError):
            return TaskOutcome(job, None, result, submitted, time.time(), None, None)
        return self._outcome(job, result)

    def _wait(self, job: Job, key: str, spec: dict[str, Any]) -> dict[str, Any] | NbflowError:
        from concurrent.futures import CancelledError

        from distributed import KilledWorker

        from nbflow.backends.dask.worker import run_task

        resources = dict(getattr(job.step.magic, "resources", ()) or ()) or None
        try:
            future = self.client.submit(run_task, spec, key=key, pure=False, retries=0,
                                        resources=resources)
            with self._sub_lock:
                self._futures[key] = future
            result: dict[str, Any] = future.result()
            return result
        except KilledWorker as exc:
            return self._lost(job, f"Dask gave up on the task: every worker that ran it died "
                                   f"({exc})", "look at the workers' logs (out of memory?)")
        except CancelledError as exc:
            if self._scheduler_lost(exc):
                return self._lost(job, f"lost the Dask scheduler at {self._address} while the "
                                       "task ran (the task was cancelled)",
                                  "check the scheduler, then continue with --resume")
            return self._lost(job, "the task was cancelled on the Dask cluster",
                              "continue with --resume")
        except (OSError, TimeoutError) as exc:
            return self._lost(job, f"lost the Dask scheduler: {type(exc).__name__}: {exc}",
                              "check the scheduler, then continue with --resume")

    def _scheduler_lost(self, exc: BaseException) -> bool:
        """The client lost its scheduler (it cancels every future when it does)."""
        reason = getattr(exc, "reason", None)
        if reason is not None:
            return reason == "scheduler-connection-lost"
        return str(getattr(self.client, "status", "running")) != "running"

    def _lost(self, job: Job, message: str, hint: str) -> NbflowError:
        return TaskFailed(message, notebook=self.spec.path, cell=job.step.cell,
                          step=job.step.name, index=job.index, hint=hint, role="backend")

    def _outcome(self, job: Job, result: dict[str, Any]) -> TaskOutcome:
        executed = result.get("executed")
        error: NbflowError | None = None
        info = result.get("error")
        if info is not None:
            remote = _rebuild(info, executed)
            if info["phase"] == "kernel":
                error = self._kernel_error(job, job.step.magic.kernel or self.spec.kernel_name,
                                           remote)
            elif info["phase"] == "spec":
                error = self._lost(job, info["message"],
                                   "install the driver's nbflow version on every worker")
            else:
                error = self._task_error(job, remote)
        manifest = None
        if error is None:
            if result.get("manifest") is None:
                error = TaskFailed(
                    "the task ended without writing its manifest (the kernel died?)",
                    cell=job.step.cell, step=job.step.name, index=job.index,
                    hint=f"look at the task log: {result.get('log_path')}")
            else:
                manifest = TaskManifest.from_dict(result["manifest"])
        return TaskOutcome(job, manifest, error, result["started"], result["ended"],
                           result.get("pid"), result.get("log_path"), executed)

    # -- start events from the workers --------------------------------------------

    def _on_event(self, event: Any) -> None:
        _when, msg = event
        with self._sub_lock:
            sub = self._submissions.get(msg.get("key"))
            if sub is None:
                return
            previous, sub.worker = sub.worker, msg["worker"]
            if previous is not None:
                sub.job = self._record_lost_worker(sub, previous, msg["worker"])
            sub.started = msg["at"]
        mode = f"{msg['mode']} on {msg['worker']}"
        sub.on_started(sub.job, msg["pid"], mode, msg.get("fallback"), msg["at"])

    def _record_lost_worker(self, sub: _Submission, lost: str, now_on: str) -> Job:
        """Dask re-ran the task elsewhere: the attempt on ``lost`` failed."""
        job = sub.job
        reason = f"worker {lost} was lost while running the task; Dask runs it again on {now_on}"
        seconds = time.time() - sub.started
        self.recorder.emit(ev.TaskFinished(
            flow=self.flow, run_id=self.run_id, step=job.step.name, index=job.index,
            status="failed", ended_at=time.time(), duration_s=seconds, error=reason,
            cache_key=job.key,
        ))
        self.progress.finished(job.step.name, job.index, "failed", seconds, f"retrying: {reason}")
        return replace(job, attempt=job.attempt + 1)

    def close(self) -> None:
        """Cancel every submitted task (Ctrl-C), then stop local kernels if any."""
        with self._sub_lock:
            futures = list(self._futures.values())
        from nbflow.backends.dask.worker import release

        try:
            if futures:
                self.client.cancel(futures, force=True)
            self.client.run(release, self._run_key, on_error="ignore")
        except Exception:  # the scheduler may already be gone
            pass
        super().close()


def _rebuild(info: dict[str, Any], executed: Any) -> Exception:
    import nbformat

    exc: Exception
    if info["nbflow_error"]:
        exc = NbflowError(info["message"], cell=info["cell"], hint=info["hint"])
    else:
        exc = RemoteError(info["message"])
    attributes = {"ename": info["ename"] or info["type"], "traceback": info["traceback"],
                  "cell_index": info["cell_index"]}
    if info["evalue"] is not None:
        attributes["evalue"] = info["evalue"]
    if executed is not None:
        attributes["nb"] = nbformat.from_dict(executed)
    for name, value in attributes.items():
        setattr(exc, name, value)
    return exc
