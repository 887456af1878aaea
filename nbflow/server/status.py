"""What the catalog says about a notebook's flow, as the lab panel shows it.

Every read goes through nbflow's client (``nbflow.client``), which opens the catalog for
one short read and closes it. A home whose catalog does not exist yet is a flow that
never ran: reading never creates it.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from nbflow.errors import NbflowError, PathspecError
from nbflow.store.home import Home

NOT_RUN = "not-run"


def _has_catalog(home: Home) -> bool:
    return os.path.exists(home.catalog_path)


def _iso(value: dt.datetime | None) -> str | None:
    """Catalog times are naive UTC; the browser gets ISO 8601 with the zone."""
    return None if value is None else value.replace(tzinfo=dt.UTC).isoformat()


def run_history(home: Home, flow: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """The flow's runs, newest first (``GET runs``)."""
    if not _has_catalog(home):
        return []
    from nbflow.client.history import list_runs

    return [
        {"id": row.pathspec, "status": row.status, "started": _iso(row.started_at),
         "ended": _iso(row.ended_at), "duration": row.duration_s, "params": row.params,
         "metrics": row.metrics, "tags": row.tags, "tasks": row.tasks, "error": row.error}
        for row in list_runs(home, flow=flow, limit=limit)
    ]


def run_status(home: Home, flow: str, run: str | None, root_dir: str) -> dict[str, Any]:
    """The latest (or the given) run of ``flow`` with each step's state (``GET status``)."""
    if run is not None and not run.startswith(f"{flow}/"):
        raise PathspecError(f"run {run!r} is not a run of {flow!r}",
                            hint=f"give a run id like {flow}/3")
    if not _has_catalog(home):
        return {"flow": flow, "run": None, "steps": {}}
    from nbflow.client.objects import Flow, Run

    found = Flow(flow, home=home).latest_run if run is None else Run(run, home=home)
    if found is None:
        return {"flow": flow, "run": None, "steps": {}}
    return {"flow": flow, "run": _run_json(found), "steps": _steps_json(found, root_dir)}


def _run_json(run: Any) -> dict[str, Any]:
    started, ended = run.created_at, run.finished_at
    end = ended or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return {"id": run.pathspec, "status": run.status, "started": _iso(started),
            "ended": _iso(ended),
            "duration": max(0.0, (end - started).total_seconds()) if started else None}


def _steps_json(run: Any, root_dir: str) -> dict[str, Any]:
    from nbflow.client.history import step_states

    return {state.name: _step_json(run, state, root_dir) for state in step_states(run)}


def step_word(state: Any) -> str:
    """One of the catalog's task statuses, or ``not-run``, for a step of a run."""
    word = str(state.state)
    if word == "waiting":
        return "pending"
    if word == "skipped":
        return NOT_RUN
    if word == "cached" and all(t.status == "cloned" for t in state.tasks):
        return "cloned"
    return word


def _step_json(run: Any, state: Any, root_dir: str) -> dict[str, Any]:
    failed = [t for t in state.tasks if t.status == "failed"]
    task = failed[0] if failed else (state.tasks[0] if state.tasks else None)
    origins = sorted({"/".join(t.cached_from.split("/")[:2]) for t in state.tasks
                      if t.cached_from})
    log = _log_path(run, state.name, task) if task is not None else None
    return {
        "status": step_word(state),
        "duration": state.seconds,
        "tasks": len(state.tasks),
        "done": state.done,
        "cached_from": origins[0] if origins else None,
        "error": failed[0].error if failed else None,
        "traceback": _traceback(run.home, log) if failed and log else None,
        "task": f"{run.pathspec}/{state.name}/{task.index}" if task is not None else None,
        "log_path": _relative(log, root_dir) if log and run.home.is_local else None,
    }


def _log_path(run: Any, step: str, task: Any) -> str:
    """The task's executed notebook (a cached task's is its origin's), as ``Task.log_path``."""
    from nbflow.client.pathspec import parse_pathspec

    origin = parse_pathspec(task.cached_from) if task.cached_from else None
    if origin is not None and origin.run is not None and origin.step and origin.task is not None:
        prefix = run.home.task_prefix(origin.flow, origin.run, origin.step, origin.task)
    else:
        prefix = run.home.task_prefix(run.flow, run.id, step, task.index)
    return f"{prefix}/notebook.ipynb"


def _relative(path: str, root_dir: str) -> str | None:
    """``path`` relative to the server's root (so Lab can open it), if it is inside it."""
    root = os.path.realpath(root_dir)
    full = os.path.realpath(path)
    if not os.path.exists(full) or os.path.commonpath([root, full]) != root:
        return None
    return os.path.relpath(full, root).replace(os.sep, "/")


def _traceback(home: Home, log: str) -> str | None:
    """The failing cell's traceback, from the task's executed notebook."""
    import json

    try:
        nb = json.loads(home.read_text(log))
    except (OSError, ValueError, Exception):  # no log (killed, never written) or unreadable
        return None
    from nbflow.kernel.tasknb import error_traceback

    return error_traceback(nb)


def task_log(home: Home, task: str, root_dir: str, *, notebook: bool = False
             ) -> dict[str, Any]:
    """A task's output and error (``GET log``), as ``nbflow logs`` prints it; with
    ``notebook``, its executed notebook too (the home may be hidden or remote, where the
    browser could not open the file itself)."""
    from nbflow.client.objects import Run
    from nbflow.client.pathspec import parse_pathspec

    spec = parse_pathspec(task)
    if spec.run is None or spec.step is None or spec.task is None:
        raise PathspecError(f"{task!r} does not name a task", hint="give FLOW/RUN/STEP/INDEX")
    if not _has_catalog(home):
        raise PathspecError(f"no runs are recorded in {home.url}", hint="run the notebook first")
    found = Run(f"{spec.flow}/{spec.run}", home=home)[spec.step][spec.task]
    log = str(found.log_path)
    text = found.stdout + found.stderr
    reply: dict[str, Any] = {"text": text, "error": found.error,
                             "notebook_path": _relative(log, root_dir) if home.is_local else None}
    if notebook:
        import json

        try:
            reply["notebook"] = json.loads(home.read_text(log))
        except (OSError, ValueError, NbflowError):  # never written (killed), unreadable
            reply["notebook"] = None
    return reply
