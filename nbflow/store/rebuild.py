"""``nbflow catalog rebuild`` and ``check``: the catalog recreated from the runs' journals.

The journals (``runs/<flow>/<run>/journal/``) hold every write a run made to the catalog,
in order; replaying them into an empty catalog gives back runs, params, tags, steps,
tasks, artifacts (and anything else a catalog event carries). A run whose journal has no
end marker is recorded ``crashed`` at its driver's last heartbeat, as ``nbflow execute``
would record it (unless its driver is still alive on this host). The task manifests and
objects are checked against the result: a succeeded task needs its manifest, an artifact
its object.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

from nbflow.store.catalog import Catalog, TableDiff
from nbflow.store.crashed import crash_statements, died_at, looks_crashed
from nbflow.store.home import Home
from nbflow.store.journal import RunJournal, read_journals

_KEPT = ("succeeded",)


@dataclass
class Rebuilt:
    path: str  # the new catalog file
    runs: int = 0
    crashed: list[str] = field(default_factory=list)  # pathspecs recorded crashed here
    problems: list[str] = field(default_factory=list)  # what could not be rebuilt, and why


def build_catalog(home: Home, path: str) -> Rebuilt:
    """Replay every journal of ``home`` into a new catalog at ``path`` (replaced if there)."""
    for stale in (path, path + ".wal", path + ".lock"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(stale)
    journals, problems = read_journals(home)
    result = Rebuilt(path, problems=problems)
    catalog = Catalog(path).create()  # no home: a replay is not journaled again
    for journal in journals:
        if journal.record is None:
            result.problems.append(f"{journal.flow}/{journal.run_id}: its journal has no "
                                   "start entry; not rebuilt")
            continue
        _replay(catalog, journal)
        result.runs += 1
        unfinished = journal.record.status == "running" and not journal.finished
        if unfinished and _crashed(catalog, home, journal):
            result.crashed.append(f"{journal.flow}/{journal.run_id}")
    result.problems += _missing_files(catalog, home)
    result.problems += _runs_without_journal(home, {(j.flow, j.run_id) for j in journals})
    return result


def _replay(catalog: Catalog, journal: RunJournal) -> None:
    assert journal.record is not None
    catalog.new_run(journal.record, run_id=journal.run_id)
    for item in journal.events():
        if isinstance(item, tuple):
            catalog.apply_sql([item])
        else:
            catalog.apply([item])


def _crashed(catalog: Catalog, home: Home, journal: RunJournal) -> bool:
    record = journal.record
    assert record is not None
    row = catalog.execute_read(
        "SELECT started_at, (SELECT max(greatest(t.started_at, t.ended_at)) FROM tasks t "
        "WHERE t.flow = r.flow AND t.run_id = r.run_id) FROM runs r "
        "WHERE flow = ? AND run_id = ?", [journal.flow, journal.run_id])[0]
    started, last_event = row
    host, pid = record.driver_host, record.driver_pid
    if host == _this_host() and not looks_crashed("running", host, pid, started):  # still running
        return False
    ended = died_at(home, journal.flow, journal.run_id, last_event, started)
    catalog.apply_sql(crash_statements(journal.flow, journal.run_id, ended))
    return True


def _this_host() -> str:
    import socket

    return socket.gethostname()


def _missing_files(catalog: Catalog, home: Home) -> list[str]:
    """Succeeded tasks without a manifest, stored artifacts without their object."""
    from nbflow.store.manifest import manifest_path

    problems = []
    tasks = catalog.execute_read(
        "SELECT flow, run_id, step, task_index FROM tasks WHERE status IN ?", [list(_KEPT)])
    for flow, run_id, step, index in tasks:
        if not home.exists(manifest_path(home, flow, run_id, step, index)):
            problems.append(f"{flow}/{run_id}/{step}/{index}: succeeded but has no manifest")
    hashes = catalog.execute_read(
        "SELECT DISTINCT hash FROM artifacts WHERE persisted AND hash IS NOT NULL")
    for (digest,) in hashes:
        if not home.objects.exists(digest):
            problems.append(f"object {digest} is recorded but missing from objects/")
    return problems


def _runs_without_journal(home: Home, journaled: set[tuple[str, int]]) -> list[str]:
    problems = []
    for path in sorted(home.fs.glob(home.path("runs", "*", "*"))):
        flow, run = str(path).rstrip("/").rsplit("/", 2)[-2:]
        if run.isdigit() and (flow, int(run)) not in journaled:
            problems.append(f"{flow}/{run}: no journal (recorded by an older nbflow, or "
                            "its start was never recorded); not rebuilt")
    return problems


def rebuild(home: Home) -> Rebuilt:
    """Recreate the catalog: build a new file beside it, then swap it in atomically."""
    target = Catalog(home.catalog_path, home)
    os.makedirs(os.path.dirname(target.path), exist_ok=True)
    result = build_catalog(home, f"{target.path}.rebuild-{os.getpid()}")
    target.replace_with(result.path)
    result.path = target.path
    return result


def check(home: Home) -> tuple[Rebuilt, list[TableDiff]]:
    """What differs between the catalog and a catalog rebuilt from the journals."""
    import tempfile

    target = Catalog(home.catalog_path, home)
    with tempfile.TemporaryDirectory(prefix="nbflow-check-") as folder:
        result = build_catalog(home, os.path.join(folder, "catalog.duckdb"))
        diffs = target.differences(result.path)
    return result, diffs


def describe(diffs: list[TableDiff], limit: int = 5) -> list[str]:
    lines = []
    for diff in diffs:
        lines.append(f"{diff.table}: {len(diff.only_catalog)} row(s) only in the catalog, "
                     f"{len(diff.only_rebuilt)} only in the journals")
        for label, rows in (("catalog ", diff.only_catalog), ("journals", diff.only_rebuilt)):
            lines += [f"  {label}: {_short(row)}" for row in rows[:limit]]
    return lines


def _short(row: tuple[Any, ...]) -> str:
    text = ", ".join(repr(v) for v in row)
    return text if len(text) <= 200 else text[:197] + "..."
