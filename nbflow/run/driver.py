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
RUNTIME_MODULES = ("nbflow.kernel.runtime",)


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
    spec: NotebookSpec, dag: Dag, options: RunOptions, *, stream: TextIO | None = None
) -> RunResult:
    from nbflow.kernel.launcher import KernelLauncher
    from nbflow.run.executor import TaskExecutor
    from nbflow.run.recorder import Recorder
    from nbflow.run.scheduler import Scheduler
    from nbflow.store.catalog import Catalog
    from nbflow.store.home import Home

    stream = stream or sys.stderr
    _quiet_library_logs()
    home = Home(options.home, catalog=options.catalog)
    catalog = Catalog(home.catalog_path)
    run_id = catalog.new_run(_run_record(spec, options))
    pathspec = f"{spec.flow}/{run_id}"
    progress = Progress(pathspec, stream=stream, quiet=options.quiet)
    progress.message(f"run {pathspec} of {spec.path} ({len(dag.steps)} steps, home {home.url})")
    for warning in dag.warnings:
        progress.message(f"warning: {warning}")
    recorder = Recorder(catalog)
    cwd = str(Path(spec.path).resolve().parent)
    env = {"NBFLOW_HOME": home.url, "NBFLOW_RUN": pathspec}
    launcher = KernelLauncher(
        cwd=cwd, env=env, preload=[*setup_imports(spec), *RUNTIME_MODULES]
    )
    executor = TaskExecutor(spec, home, launcher, options.params, spec.flow, run_id, cwd)
    scheduler = Scheduler(
        dag, executor, recorder, progress, home=home, params=options.params,
        max_workers=options.max_workers, max_num_splits=options.max_num_splits,
    )
    summary: RunSummary | None = None
    try:
        summary = scheduler.run()
    finally:
        launcher.close()
        status = summary.status if summary else "cancelled"
        _finish(recorder, spec.flow, run_id, status, summary)
    notebook_path = _write_notebook(spec, home, run_id, summary, options.output)
    return RunResult(spec.flow, run_id, summary, notebook_path)


def _quiet_library_logs() -> None:
    """papermill, nbclient and asyncio log what nbflow already reports, in their own words."""
    import logging

    for name in ("papermill", "traitlets", "nbclient", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _finish(recorder: Any, flow: str, run_id: int, status: str, summary: RunSummary | None) -> None:
    import time

    from nbflow.store import events as ev

    error = "; ".join(str(e).splitlines()[0] for e in summary.errors) if summary else None
    recorder.emit(ev.RunFinished(flow=flow, run_id=run_id, status=status,
                                 ended_at=time.time(), error=error or None))
    recorder.close()


def _run_record(spec: NotebookSpec, options: RunOptions) -> Any:
    from nbflow.store.events import RunRecord

    git = runinfo.git_info(str(Path(spec.path).resolve().parent))
    return RunRecord(
        flow=spec.flow,
        notebook_path=str(Path(spec.path).resolve()),
        notebook_hash=spec.content_hash,
        git_commit=git.commit,
        git_dirty=git.dirty,
        params=dict(options.params),
        param_types={p.name: p.type for p in spec.parameters},
        tags=list(options.tags),
        user=runinfo.user(),
        host=runinfo.host(),
        python=runinfo.python_version(),
        packages=runinfo.package_versions(),
        driver_pid=os.getpid(),
        driver_host=runinfo.host(),
    )


def _write_notebook(
    spec: NotebookSpec, home: Any, run_id: int, summary: RunSummary, output: str | None
) -> str:
    import nbformat

    from nbflow.run.outputnb import assemble

    source = nbformat.read(spec.path, as_version=4)
    text = nbformat.writes(assemble(source, summary.outcomes))
    kept = f"{home.run_prefix(spec.flow, run_id)}/notebook.ipynb"
    home.write_text(kept, text)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        return output
    return kept
