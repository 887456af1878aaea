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

_launchers: dict[tuple[str, tuple[str, ...]], Any] = {}
_lock = threading.Lock()


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
    cwd = spec["cwd"] if os.path.isdir(spec["cwd"]) else tempfile.gettempdir()
    started = time.time()
    try:
        kernel = _launcher(cwd, spec["preload"]).start(spec["kernel"], env=spec["env"])
    except Exception as exc:
        return _outcome(spec, worker, error=describe_error(exc, "kernel"), started=started)
    started = time.time()  # execution starts: kernel start-up is not part of it, as locally
    _announce(spec, worker, kernel, started)
    return _run_on(kernel, spec, worker, cwd, started)


def _run_on(kernel: Any, spec: dict[str, Any], worker: str, cwd: str,
            started: float) -> dict[str, Any]:
    import nbformat

    from nbflow.kernel.execute import execute_notebook
    from nbflow.store.home import Home
    from nbflow.store.manifest import read_manifest

    nb = nbformat.from_dict(spec["notebook"])
    executed, error = nb, None
    try:
        executed = execute_notebook(nb, kernel, cwd=cwd, timeout=spec["timeout"])
    except Exception as exc:
        executed, error = getattr(exc, "nb", None) or nb, describe_error(exc, "task")
    finally:
        kernel.shutdown()
    ended = time.time()
    home = Home(spec["home"])
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


def _launcher(cwd: str, preload: list[str]) -> Any:
    """One launcher (fork server where it can be used) per worker process and directory."""
    from nbflow.kernel.launcher import KernelLauncher

    key = (cwd, tuple(preload))
    with _lock:
        if not _launchers:
            atexit.register(_close_launchers)
        if key not in _launchers:
            _launchers[key] = KernelLauncher(cwd=cwd, env={}, preload=list(preload))
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
