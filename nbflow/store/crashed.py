"""Runs whose driver died (SIGKILL, power loss) stay 'running' in the catalog until someone
notices. Every ``nbflow execute`` and every listing notices: a run on this host whose driver
process is gone (or whose pid now belongs to a younger process) becomes 'crashed', and its
unfinished tasks 'failed'. What the run had recorded stays, so ``--resume`` can clone it."""

from __future__ import annotations

import socket
import time
from datetime import datetime
from typing import Any

from nbflow.store.catalog import Catalog


def _driver_alive(pid: int | None, started_at: datetime | None) -> bool:
    import psutil

    if pid is None:
        return False
    try:
        process = psutil.Process(pid)
        created = process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    if process.status() == psutil.STATUS_ZOMBIE:
        return False
    if started_at is None:
        return True
    from datetime import timezone

    started = started_at.replace(tzinfo=timezone.utc).timestamp()
    return created <= started + 1.0  # a pid reused by a process born after the run began


def looks_crashed(status: str, host: str | None, pid: int | None,
                  started_at: datetime | None) -> bool:
    """A 'running' run on this host whose driver is gone (readers use it without writing)."""
    return status == "running" and host == socket.gethostname() and not _driver_alive(
        pid, started_at)


def mark_crashed_runs(catalog: Catalog) -> list[tuple[str, int]]:
    """Mark this host's dead 'running' runs as crashed; return their (flow, run_id)."""
    host = socket.gethostname()
    rows = catalog.execute_read(
        "SELECT flow, run_id, driver_pid, started_at FROM runs "
        "WHERE status = 'running' AND driver_host = ?",
        [host],
    )
    dead = [(flow, run_id) for flow, run_id, pid, started in rows
            if not _driver_alive(pid, started)]
    if dead:
        catalog.apply_sql([
            ("UPDATE runs SET status = 'crashed', ended_at = coalesce(ended_at, ?), "
             "error = coalesce(error, 'the nbflow process running it died') "
             "WHERE flow = ? AND run_id = ? AND status = 'running'",
             [_now(), flow, run_id])
            for flow, run_id in dead
        ] + [
            ("UPDATE tasks SET status = 'failed', error = coalesce(error, "
             "'the nbflow process running it died') "
             "WHERE flow = ? AND run_id = ? AND status IN ('running', 'pending')",
             [flow, run_id])
            for flow, run_id in dead
        ])
    return dead


def _now() -> Any:
    from datetime import timezone

    return datetime.fromtimestamp(time.time(), tz=timezone.utc).replace(tzinfo=None)
