"""What runs on a Dask worker: one task in its own kernel, through papermill, as locally.

A user error in the step comes back as data in the result, so Dask never retries it;
only a lost worker makes Dask run the task again (elsewhere).
"""

from __future__ import annotations

import atexit
import json
import os
import tempfile
import threading
import time
from typing import Any

from nbflow.backends.dask.spec import SPEC_VERSION, STARTED_TOPIC, describe_error

IDLE_S = 600.0
_launchers: dict[tuple[str, str, tuple[str, ...]], Any] = {}
_last_used: dict[tuple[str, str, tuple[str, ...]], float] = {}
_homes: dict[str, Any] = {}
_lock = threading.Lock()


def run_key(flow: str, run_id: int) -> str:
    return f"{flow}/{run_id}"


def nbflow_version() -> str:
    """Run on the scheduler and every worker when the driver connects."""
    from nbflow import __version__

    return __version__


def run_task(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one task described by ``spec`` (see ``spec.task_spec``); return its outcome."""
    from nbflow import __version__

    worker = _worker_address()
    if spec.get("spec_version") != SPEC_VERSION or spec.get("nbflow") != __version__:
        problem = ValueError(
            f"worker {worker} runs nbflow {__version__} (task spec v{SPEC_VERSION}) but the "
            f"driver sent nbflow {spec.get('nbflow')} (v{spec.get('spec_version')})")
        return _outcome(spec, worker, error=describe_error(problem, "spec"))
    _import_lightly()
    import nbformat

    cwd = _cwd(spec["cwd"])
    nb = nbformat.from_dict(spec["notebook"])
    started = time.time()
    try:
        launcher = _launcher(run_key(spec["flow"], spec["run_id"]), cwd, spec["preload"])
        # The direct engine where the kernelspec allows it (a forked child running the
        # cells), a kernel (forked, or started the ordinary way) otherwise: as locally.
        kernel = launcher.start_direct(spec["kernel"], nb, cwd=cwd, env=spec["env"])
        if kernel is None:
            kernel = launcher.start(spec["kernel"], env=spec["env"])
    except Exception as exc:
        return _outcome(spec, worker, error=describe_error(exc, "kernel"), started=started)
    started = time.time()  # execution starts: kernel start-up is not part of it, as locally
    _announce(spec, worker, kernel, started)
    return _run_on(kernel, nb, spec, worker, cwd, started)


def _run_on(kernel: Any, nb: Any, spec: dict[str, Any], worker: str, cwd: str,
            started: float) -> dict[str, Any]:
    from nbflow.kernel.direct import DirectTask, execute_direct
    from nbflow.kernel.execute import execute_notebook
    from nbflow.store.manifest import read_manifest

    executed, error = nb, None
    try:
        if isinstance(kernel, DirectTask):
            executed = execute_direct(nb, kernel, timeout=spec["timeout"])
        else:
            executed = execute_notebook(nb, kernel, cwd=cwd, timeout=spec["timeout"])
    except Exception as exc:
        executed, error = getattr(exc, "nb", None) or nb, describe_error(exc, "task")
    finally:
        kernel.shutdown()
    ended = time.time()
    home = _home(spec["home"])
    log_path = _save_log(home, spec, executed)
    manifest = None
    if error is None:
        found = read_manifest(home, spec["flow"], spec["run_id"], spec["step"], spec["index"])
        manifest = found.to_dict() if found is not None else None
    return _outcome(spec, worker, manifest=manifest, error=error, started=started, ended=ended,
                    pid=kernel.pid, log_path=log_path, executed=executed)


def _outcome(spec: dict[str, Any], worker: str, *, manifest: dict[str, Any] | None = None,
             error: dict[str, Any] | None = None, started: float | None = None,
             ended: float | None = None, pid: int | None = None, log_path: str | None = None,
             executed: Any = None) -> dict[str, Any]:
    now = time.time()
    return {
        "spec_version": SPEC_VERSION, "key": spec.get("key"), "worker": worker,
        "manifest": manifest, "error": error, "started": started or now, "ended": ended or now,
        "pid": pid, "log_path": log_path,
        "executed": json.loads(json.dumps(executed)) if executed is not None else None,
    }


def warm_up(run: str, cwd: str, preload: list[str]) -> None:
    """Run on every worker when a run starts: the run's fork server starts (imports,
    ≈1-2 s) in the background while the driver plans the first tasks."""
    def warm() -> None:
        _import_lightly()
        _launcher(run, _cwd(cwd), preload)

    threading.Thread(target=warm, daemon=True, name="nbflow-warm-up").start()


def _import_lightly() -> None:
    """jsonschema (under nbformat and papermill) without its slow optional import, as in
    nbflow's own processes (``nbflow._imports``): 1-2 s of CPU per worker otherwise."""
    import sys

    if "jsonschema" in sys.modules:
        return
    from nbflow._imports import without_slow_optional_imports

    with without_slow_optional_imports():
        try:
            import jsonschema  # noqa: F401
        except ImportError:  # nbformat works without it
            pass


def release(run: str) -> None:
    """Run on every worker when a run ends (or is cancelled): stop its fork server and
    any of its task processes still running (Dask cannot stop a running task)."""
    with _lock:
        gone = [_launchers.pop(key) for key in list(_launchers) if key[0] == run]
    for launcher in gone:
        threading.Thread(target=launcher.close, daemon=True, name="nbflow-release").start()


def _cwd(cwd: str) -> str:
    """The notebook's directory where the worker shares the driver's disk."""
    return cwd if os.path.isdir(cwd) else tempfile.gettempdir()


def _home(url: str) -> Any:
    """One ``Home`` per URL and worker process: its fsspec filesystem (connections,
    credentials) is reused across tasks."""
    from nbflow.store.home import Home

    with _lock:
        if url not in _homes:
            _homes[url] = Home(url)
        return _homes[url]


def _launcher(run: str, cwd: str, preload: list[str]) -> Any:
    """The run's launcher in this worker process: a fork server per run, as locally, so
    that a module the notebook imports is never a stale copy from an earlier run. One a
    driver never released (it died) is closed once idle for ``IDLE_S``."""
    from nbflow.kernel.launcher import KernelLauncher

    key = (run, cwd, tuple(preload))
    now = time.monotonic()
    with _lock:
        if not _launchers:
            atexit.register(_close_launchers)
        stale = [k for k, used in _last_used.items() if now - used > IDLE_S and k != key]
        for k in stale:
            _last_used.pop(k, None)
            found = _launchers.pop(k, None)
            if found is not None:
                threading.Thread(target=found.close, daemon=True).start()
        if key not in _launchers:
            _launchers[key] = KernelLauncher(cwd=cwd, env={}, preload=list(preload))
        _last_used[key] = now
        return _launchers[key]


def _close_launchers() -> None:
    with _lock:
        for launcher in _launchers.values():
            launcher.close()
        _launchers.clear()


def _announce(spec: dict[str, Any], worker: str, kernel: Any, started: float) -> None:
    """Tell the driver the task started: on which worker, with which pid."""
    from distributed import get_worker

    get_worker().log_event(STARTED_TOPIC, {
        "key": spec["key"], "worker": worker, "pid": kernel.pid, "mode": kernel.mode,
        "fallback": kernel.fallback_reason, "at": started,
    })


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "?"


def _save_log(home: Any, spec: dict[str, Any], executed: Any) -> str | None:
    prefix = home.task_prefix(spec["flow"], spec["run_id"], spec["step"], spec["index"])
    path = f"{prefix}/notebook.ipynb"
    try:
        home.write_text(path, json.dumps(executed, indent=1, ensure_ascii=False))
    except Exception:  # a log that cannot be written must not hide the task's own result
        return None
    return path
