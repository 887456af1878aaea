"""One ``nbflow execute``: validate, record the run, schedule its tasks, write the results."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from nbflow.graph.build import Dag, build_dag
from nbflow.notebook.reader import read_notebook
from nbflow.notebook.spec import NotebookSpec
from nbflow.run import runinfo
from nbflow.run.options import RunOptions
from nbflow.run.progress import Progress
from nbflow.run.scheduler import RunSummary

_IMPORT = re.compile(r"^\s*(?:import|from)\s+([A-Za-z_][\w]*)", re.MULTILINE)

# Modules every task kernel imports: worth having in a forked kernel already.
RUNTIME_MODULES = ("nbflow.kernel.runtime", "nbflow.interactive.magics")


@dataclass
class RunResult:
    flow: str
    run_id: int
    summary: RunSummary
    notebook_path: str  # the run's executed notebook

    @property
    def pathspec(self) -> str:
        return f"{self.flow}/{self.run_id}"

    @property
    def ok(self) -> bool:
        return self.summary.status == "succeeded"


def prepare(path: str) -> tuple[NotebookSpec, Dag]:
    """Read and validate the notebook; raises before anything runs."""
    spec = read_notebook(path)
    return spec, build_dag(spec)


def setup_imports(spec: NotebookSpec) -> list[str]:
    """Top-level modules the setup cells import, in order (candidates to preload)."""
    seen: dict[str, None] = {}
    for cell in spec.setup:
        for name in _IMPORT.findall(cell.source):
            seen.setdefault(name, None)
    return list(seen)


def execute(
    spec: NotebookSpec,
    dag: Dag,
    options: RunOptions,
    *,
    stream: TextIO | None = None,
    observers: tuple[Any, ...] = (),
) -> RunResult:
    """Run the notebook. ``observers`` get every progress event (see ``Progress``), plus
    ``run_started(pathspec, dag)`` before the first task."""
    from nbflow.backends import open_backend
    from nbflow.store.home import Home

    stream = stream or sys.stderr
    _quiet_library_logs()
    home = Home(options.home, catalog=options.catalog).prepare_for_writing()
    backend = open_backend(options)
    backend.connect()  # an unusable backend fails here, before a run is recorded
    try:
        return _execute(spec, dag, options, home, backend, stream, observers)
    finally:
        backend.close()


def _execute(spec: NotebookSpec, dag: Dag, options: RunOptions, home: Any, backend: Any,
             stream: TextIO, observers: tuple[Any, ...]) -> RunResult:
    from nbflow.run.plan import Planner
    from nbflow.run.recorder import Recorder
    from nbflow.run.reuse import CacheIndex, plan_resume
    from nbflow.run.scheduler import Scheduler
    from nbflow.store.catalog import Catalog

    catalog = Catalog(home.catalog_path, home)
    resume = None
    params = options.params
    if options.resume is not None:
        resume = plan_resume(catalog.create(), dag, options.resume, options.from_step)
        params = resume.params
    cache = None if options.no_cache else CacheIndex(catalog, home, [s.name for s in dag.steps])
    # One transaction creates the catalog if need be, marks this host's dead runs crashed,
    # records this run and reads the cache index (a cached re-run's largest cost).
    started = catalog.start_run(
        run_record(spec, dag, params=params, tags=list(options.tags),
                   origin_run=resume.origin_run if resume else None),
        read=cache.query() if cache is not None else None)
    run_id = started.run_id
    if cache is not None:
        cache.fill(started.rows)
    pathspec = f"{spec.flow}/{run_id}"
    recorder = Recorder(catalog)
    executor: Any = None
    summary: RunSummary | None = None
    heartbeat = Heartbeat(home, spec.flow, run_id)
    try:  # from here on the run is recorded: however it stops, it ends recorded
        progress = Progress(pathspec, stream=stream, quiet=options.quiet, observers=observers)
        for observer in observers:
            if hasattr(observer, "run_started"):
                observer.run_started(pathspec, dag)
        origin = f", resuming {spec.flow}/{resume.origin_run}" if resume else ""
        progress.message(f"run {pathspec} of {spec.path} ({len(dag.steps)} steps{origin}, "
                         f"home {home.url}, {backend.describe()})")
        for warning in dag.warnings:
            progress.message(f"warning: {warning}")
        cwd = str(Path(spec.path).resolve().parent)
        env = {"NBFLOW_HOME": home.url, "NBFLOW_RUN": pathspec}

        def launcher() -> Any:
            from nbflow.kernel.launcher import KernelLauncher

            return KernelLauncher(cwd=cwd, env=env,
                                  preload=[*setup_imports(spec), *RUNTIME_MODULES])

        executor = backend.executor(spec=spec, home=home, launcher_factory=launcher,
                                    params=params, flow=spec.flow, run_id=run_id, cwd=cwd,
                                    progress=progress, recorder=recorder,
                                    preload=[*setup_imports(spec), *RUNTIME_MODULES])
        planner = Planner(dag, home, params, flow=spec.flow, run_id=run_id,
                          max_num_splits=options.max_num_splits, directory=cwd,
                          split_runner=executor.split, cache_splits=not options.no_cache)
        scheduler = Scheduler(
            dag, planner, executor, recorder, progress,
            max_workers=backend.slots(options.max_workers),
            cache=cache,
            resume=resume,
        )
        summary = scheduler.run()
    finally:
        if executor is not None:
            executor.close()
        _finish(recorder, spec.flow, run_id, summary)
        heartbeat.stop()
    notebook_path = _write_notebook(spec, home, run_id, summary, options.output)
    return RunResult(spec.flow, run_id, summary, notebook_path)


class Heartbeat:
    """Refreshes the run's heartbeat while the driver lives: a crashed run ends at its
    last beat, not when the crash is noticed."""

    INTERVAL_S = 1.0

    def __init__(self, home: Any, flow: str, run_id: int) -> None:
        import threading

        from nbflow.store.journal import beat

        self._stop = threading.Event()

        def loop() -> None:
            while True:
                try:
                    beat(home, flow, run_id)
                except Exception:  # a missed beat only makes a crash's end time coarser
                    pass
                if self._stop.wait(self.INTERVAL_S):
                    return

        self._thread = threading.Thread(target=loop, name="nbflow-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _quiet_library_logs() -> None:
    """papermill, nbclient and asyncio log what nbflow already reports, in their own words."""
    import logging

    for name in ("papermill", "traitlets", "nbclient", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _finish(recorder: Any, flow: str, run_id: int, summary: RunSummary | None) -> None:
    """Record how the run ended; with no summary the driver itself failed."""
    import time

    from nbflow.store import events as ev

    status: Any
    stopped_by = sys.exc_info()[1]
    if summary is None and _interrupted(stopped_by):
        status, error = "cancelled", "cancelled by the user"  # Ctrl-C before tasks ran
    elif summary is None:
        status, error = "failed", f"nbflow stopped: {stopped_by!r}"
    else:
        status = summary.status
        error = "; ".join(str(e).splitlines()[0] for e in summary.errors)
    recorder.emit(ev.RunFinished(flow=flow, run_id=run_id, status=status,
                                 ended_at=time.time(), error=error or None))
    recorder.close()


def _interrupted(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a Ctrl-C, or an error raised while handling one: the run was
    cancelled by its user even if stopping it then failed too."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__context__
    return False


def planned_steps(dag: Dag) -> list[dict[str, Any]]:
    """The DAG as the catalog's ``steps`` rows."""
    from nbflow.graph.resolve import exports

    return [
        {
            "step": s.name, "kind": s.kind, "cell": s.cell, "foreach": s.magic.foreach,
            "as_var": s.magic.as_ if s.kind == "branch" else None,
            "parents": list(dag.parents[s.name]), "inputs": sorted(s.inputs),
            "outputs": sorted(exports(s)),
        }
        for s in dag.steps
    ]


def run_record(spec: NotebookSpec, dag: Dag, *, params: dict[str, Any], tags: list[str],
               origin_run: int | None = None, status: str = "running") -> Any:
    """The catalog's record of a new run of ``spec``: where, from what, by whom, with what.
    Used by ``nbflow execute`` and by a live kernel's ``interactive`` run."""
    from nbflow.store.events import RunRecord

    git = runinfo.git_info(str(Path(spec.path).resolve().parent))
    return RunRecord(
        flow=spec.flow,
        notebook_path=str(Path(spec.path).resolve()),
        notebook_hash=spec.content_hash,
        git_commit=git.commit,
        git_dirty=git.dirty,
        params=dict(params),
        param_types={p.name: p.type for p in spec.parameters},
        tags=tags,
        user=runinfo.user(),
        host=runinfo.host(),
        python=runinfo.python_version(),
        packages=runinfo.package_versions(),
        driver_pid=os.getpid(),
        driver_host=runinfo.host(),
        steps=planned_steps(dag),
        origin_run=origin_run,
        status=status,  # type: ignore[arg-type]
    )


def _write_notebook(
    spec: NotebookSpec, home: Any, run_id: int, summary: RunSummary, output: str | None
) -> str:
    from nbflow.notebook import ipynb
    from nbflow.run.outputnb import assemble

    text = ipynb.dumps(assemble(ipynb.read(spec.path), summary.outcomes, home,
                                setup=summary.setup_cells))
    kept = f"{home.run_prefix(spec.flow, run_id)}/notebook.ipynb"
    home.write_text(kept, text)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        return output
    return home.url_of(kept)
