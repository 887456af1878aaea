"""Run one task: its notebook on a fresh kernel, then read back what it stored."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbflow.errors import NbflowError, TaskFailed
from nbflow.kernel.tasknb import build_task_notebook, cell_role
from nbflow.notebook.spec import NotebookSpec, StepSpec
from nbflow.run.jobs import Job
from nbflow.store.home import Home
from nbflow.store.manifest import TaskManifest, read_manifest
from nbflow.store.serialize import ArtifactRecord

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
SPLIT_INDEX = "split"  # where a setup-defined foreach's elements are recorded

# job, pid, mode, why not fork, when it started (the kernel up, the notebook starting)
StartedCallback = Callable[[Job, int, str, "str | None", float], None]


@dataclass
class TaskOutcome:
    job: Job
    manifest: TaskManifest | None
    error: NbflowError | None
    started: float
    ended: float
    pid: int | None
    log_path: str | None
    executed: Any = None  # the task's executed notebook
    origin: str | None = None  # for a reused task: the pathspec of the task that ran


class TaskExecutor:
    """Turns a Job into a TaskOutcome; one instance serves every worker thread."""

    def __init__(
        self,
        spec: NotebookSpec,
        home: Home,
        launcher_factory: Callable[[], Any],
        params: dict[str, Any],
        flow: str,
        run_id: int,
        cwd: str,
    ) -> None:
        self.spec = spec
        self.home = home
        self._launcher_factory = launcher_factory
        self._launcher: Any = None
        self._lock = threading.Lock()
        self.params = params
        self.flow = flow
        self.run_id = run_id
        self.cwd = cwd
        self.split_kernels: list[str] = []  # foreach names whose elements a kernel listed
        # Setup cells run once in a template the tasks fork from, when that is safe
        # (``nbflow.run.setupmode``); else replayed in every task, and setup_note says why.
        self.setup_note: str | None = None
        self.setup_executed: list[dict[str, Any]] | None = None  # the template's setup cells
        self._setup_decided = False
        self._setup_blocked = False

    def split(self, step: StepSpec, name: str) -> list[ArtifactRecord]:
        """The elements of setup-defined ``name``, computed in a kernel that runs only the
        setup cells (the driver never runs user code)."""
        from nbflow.errors import DagError
        from nbflow.kernel.execute import execute_notebook

        common = {"home": self.home.url, "flow": self.flow, "run": self.run_id,
                  "step": step.name, "index": SPLIT_INDEX}
        nb = build_task_notebook(self.spec, step, self.params, {**common, "inputs": []},
                                 {**common, "outputs": [], "splits": [name]},
                                 include_step=False)
        kernel = self.launcher.start(step.magic.kernel or self.spec.kernel_name)
        self.split_kernels.append(name)
        try:
            execute_notebook(nb, kernel, cwd=self.cwd, timeout=step.magic.timeout)
        except Exception as exc:
            raise self._task_error(Job(step, 0, {}, {}), exc) from None
        finally:
            kernel.shutdown()
        manifest = read_manifest(self.home, self.flow, self.run_id, step.name, SPLIT_INDEX)
        if manifest is None or name not in manifest.splits:
            raise DagError(f"--foreach {name}: the setup cells do not bind an iterable {name!r}",
                           notebook=self.spec.path, cell=step.cell, step=step.name,
                           hint=f"bind {name!r} to a list in a setup cell, or produce it in a step")
        return manifest.splits[name]

    @property
    def launcher(self) -> Any:
        """Made on the first task that really runs: a fully cached run starts no kernel."""
        with self._lock:
            if self._launcher is None:
                self._launcher = self._launcher_factory()
            return self._launcher

    def close(self) -> None:
        with self._lock:
            if self._launcher is not None:
                self._launcher.close()

    def run(self, job: Job, on_started: StartedCallback) -> TaskOutcome:
        kernel_name = job.step.magic.kernel or self.spec.kernel_name
        started = time.time()
        pid: int | None = None
        error: NbflowError | None = None
        nb = executed = None
        try:
            try:
                template = self._template(kernel_name)
                nb = build_task_notebook(self.spec, job.step, self.params, job.load_plan,
                                         job.persist_plan, include_setup=template is None)
                executed = nb
                kernel = self.launcher.start_direct(kernel_name, nb, cwd=self.cwd,
                                                    template=template)
                if kernel is None and template is not None:  # its fork server is gone
                    nb = executed = build_task_notebook(
                        self.spec, job.step, self.params, job.load_plan, job.persist_plan)
                    kernel = self.launcher.start_direct(kernel_name, nb, cwd=self.cwd)
                if kernel is None:
                    kernel = self.launcher.start(kernel_name)
            except Exception as exc:
                raise self._kernel_error(job, kernel_name, exc) from exc
            pid = kernel.pid
            started = time.time()  # execution starts: kernel start-up is not part of it
            on_started(job, kernel.pid, kernel.mode, kernel.fallback_reason, started)
            try:
                executed = self._execute(nb, kernel, job.step.magic.timeout)
            finally:
                kernel.shutdown()
        except Exception as exc:  # every failure of the task becomes a TaskFailed
            executed = getattr(exc, "nb", None) or nb
            error = self._task_error(job, exc)
            if executed is None:  # it failed before its notebook was built
                executed = build_task_notebook(self.spec, job.step, self.params,
                                               job.load_plan, job.persist_plan)
        ended = time.time()
        log_path = self._save_log(job, executed)
        manifest = None
        if error is None:
            manifest = read_manifest(self.home, self.flow, self.run_id, job.step.name, job.index)
            if manifest is None:
                error = TaskFailed(
                    "the task ended without writing its manifest (the kernel died?)",
                    cell=job.step.cell,
                    step=job.step.name,
                    index=job.index,
                    hint=f"look at the task log: {log_path}",
                )
        return TaskOutcome(job, manifest, error, started, ended, pid, log_path, executed)

    def _template(self, kernel_name: str) -> Any:
        """The ready setup template for this kernel's tasks, or ``None`` to replay setup."""
        from nbflow.kernel.tasknb import setup_cells
        from nbflow.run.setupmode import has_setup, template_blocker

        if not has_setup(self.spec):
            return None
        with self._lock:
            if not self._setup_decided:
                self._setup_decided = True
                self.setup_note = template_blocker(self.spec)
                self._setup_blocked = self.setup_note is not None
        if self._setup_blocked:
            return None
        cells = setup_cells(self.spec, self.params)
        template = self.launcher.setup_template(kernel_name, [c["source"] for c in cells],
                                                cwd=self.cwd)
        if template is None:  # this kernel's tasks do not run direct: nothing to fork from
            return None
        with self._lock:
            if template.tid is None:
                if self.setup_note is None:
                    where = cells[template.index] if template.index is not None else None
                    number = where["metadata"]["nbflow"]["cell"] if where else None
                    self.setup_note = (f"setup cell {number}: {template.reason}"
                                       if number else str(template.reason))
                return None
            if self.setup_executed is None:
                for cell, done in zip(cells, template.cells, strict=False):
                    cell["outputs"] = done["outputs"]
                    cell["execution_count"] = done["execution_count"]
                self.setup_executed = cells
        return template

    def _execute(self, nb: Any, kernel: Any, timeout: float | None) -> Any:
        from nbflow.kernel.direct import DirectTask, execute_direct
        from nbflow.kernel.execute import execute_notebook

        if isinstance(kernel, DirectTask):
            return execute_direct(nb, kernel, timeout=timeout)
        return execute_notebook(nb, kernel, cwd=self.cwd, timeout=timeout)

    def _kernel_error(self, job: Job, kernel_name: str, exc: Exception) -> TaskFailed:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        hint = "see the kernel's own log above, or start it by hand with `jupyter console`"
        if isinstance(exc, NoSuchKernel):
            known = ", ".join(sorted(KernelSpecManager().find_kernel_specs())) or "none"
            where = ("the step's --kernel" if job.step.magic.kernel else
                     "the notebook's kernel (JupyterLab: Kernel > Change Kernel…)")
            hint = (f"installed kernelspecs: {known} (`jupyter kernelspec list`); install one "
                    f"named {kernel_name!r} or change {where}")
        return TaskFailed(
            f"the task's kernel {kernel_name!r} could not be started: {type(exc).__name__}: {exc}",
            notebook=self.spec.path, cell=job.step.cell, step=job.step.name, index=job.index,
            hint=hint, role="kernel", ename=type(exc).__name__, evalue=str(exc),
        )

    def _task_error(self, job: Job, exc: BaseException) -> NbflowError:
        """A TaskFailed that points at the user's cell, whatever part of the task failed."""
        if isinstance(exc, TaskFailed):
            return exc
        nb_cells = getattr(getattr(exc, "nb", None), "cells", None)
        cell_index = getattr(exc, "cell_index", None)
        if cell_index is None and isinstance(exc, NbflowError) and exc.cell is not None:
            cell_index = exc.cell - 1  # the launcher's errors count the task notebook's cells
        role: str = "step"
        cell: int | None = job.step.cell
        if cell_index is not None and nb_cells is not None and 0 <= cell_index < len(nb_cells):
            role, cell = cell_role(nb_cells[cell_index])
        ename = getattr(exc, "ename", None) or type(exc).__name__
        # papermill's str(exc) repeats the whole traceback: take evalue even when it is empty
        raw = getattr(exc, "evalue", None)
        if raw is None:
            raw = getattr(exc, "message", exc)
        evalue = _ANSI.sub("", str(raw))
        traceback = _ANSI.sub("", "\n".join(getattr(exc, "traceback", None) or []))
        where = {
            "setup": f"setup cell {cell} failed while preparing the task",
            "parameters": "the injected parameters failed",
            "load": "loading the step's inputs failed",
            "step": "the step failed",
            "persist": "storing the step's outputs failed",
        }[role]
        message = f"{where}: {evalue}" if isinstance(exc, NbflowError) else \
            f"{where}: {ename}: {evalue}".rstrip(": ")
        hint = getattr(exc, "hint", None)
        if ename == "MemoryError":
            hint = ("the step ran out of memory: work on smaller pieces (a --foreach over "
                    "chunks), free large names with `del`, or lower --max-workers")
        return TaskFailed(
            message,
            notebook=self.spec.path,
            cell=cell if cell is not None else job.step.cell,
            step=job.step.name,
            hint=hint,
            index=job.index,
            ename=ename,
            evalue=evalue,
            traceback=traceback,
            role=role,
        )

    def _save_log(self, job: Job, executed: Any) -> str | None:
        import json

        path = f"{self.home.task_prefix(self.flow, self.run_id, job.step.name, job.index)}/notebook.ipynb"
        try:  # json, not nbformat.writes: papermill's output needs no second validation
            self.home.write_text(path, json.dumps(executed, indent=1, ensure_ascii=False))
        except Exception:  # a log that cannot be written must not hide the task's own result
            return None
        return path
