"""Runs whose driver died (SIGKILL, power loss) stay 'running' in the catalog until a writer
notices. Readers never write: they see such a run as 'crashed' through the catalog's views
(``crashed_among``). Every ``nbflow execute`` records it (``Catalog.start_run``): a run on this
host whose driver process is gone (or whose pid now belongs to a younger process) becomes
'crashed', ended at its driver's last heartbeat, and its unfinished tasks 'failed'. What the
run had recorded stays, so ``--resume`` can clone it."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbflow.store.home import Home


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

    started = started_at.replace(tzinfo=UTC).timestamp()
    return created <= started + 1.0  # a pid reused by a process born after the run began


def looks_crashed(status: str, host: str | None, pid: int | None,
                  started_at: datetime | None) -> bool:
    """A 'running' run on this host whose driver is gone (readers use it without writing)."""
    return status == "running" and host == socket.gethostname() and not _driver_alive(
        pid, started_at)


def _epoch(value: datetime | None) -> float | None:

    return None if value is None else value.replace(tzinfo=UTC).timestamp()


def died_at(home: Home | None, flow: str, run_id: int, last_event: datetime | None,
            started_at: datetime | None) -> float:
    """When a crashed run's driver died: its last heartbeat, else its last recorded event."""
    from nbflow.store.journal import last_beat

    beat = last_beat(home, flow, run_id) if home is not None else None
    candidates = [t for t in (beat, _epoch(last_event), _epoch(started_at)) if t is not None]
    return max(candidates) if candidates else time.time()


def crashed_among(rows: list[tuple[Any, ...]], home: Home | None
                  ) -> list[tuple[str, int, float]]:
    """Of (flow, run_id, host, pid, started_at, last_event) rows of 'running' runs, those
    whose driver died, with when it died."""
    return [(flow, run_id, died_at(home, flow, run_id, last, started))
            for flow, run_id, host, pid, started, last in rows
            if looks_crashed("running", host, pid, started)]


def crash_statements(flow: str, run_id: int, ended: float) -> list[tuple[str, list[Any]]]:
    """Record a run as crashed at ``ended`` (epoch), its unfinished tasks failed."""
    return [
        ("UPDATE runs SET status = 'crashed', ended_at = coalesce(ended_at, ?), "
         "error = coalesce(error, 'the nbflow process running it died') "
         "WHERE flow = ? AND run_id = ? AND status = 'running'",
         [_utc(ended), flow, run_id]),
        ("UPDATE tasks SET status = 'failed', error = coalesce(error, "
         "'the nbflow process running it died') "
         "WHERE flow = ? AND run_id = ? AND status IN ('running', 'pending')",
         [flow, run_id]),
    ]


def _utc(epoch: float) -> Any:

    return datetime.fromtimestamp(epoch, tz=UTC).replace(tzinfo=None)
