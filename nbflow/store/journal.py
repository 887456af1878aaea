"""The run journal: every catalog write of a run, kept on disk next to its task manifests.

The catalog is an index; the journal and the manifests are the truth. Before a write
commits to the catalog, the same write is stored as one small JSON file under
``runs/<flow>/<run>/journal/`` (atomically, so a reader never sees half of one).
``nbflow catalog rebuild`` replays the journals in order into a new catalog; a run
whose journal has no end marker (``RunFinished``) is ``crashed``.

The driver also refreshes ``runs/<flow>/<run>/heartbeat`` (its clock, in epoch seconds)
while it lives, so a crashed run's end is when its driver died, not when someone noticed.

Stdlib only: the journal is written by drivers and read by readers without DuckDB.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nbflow.store.events import CatalogEvent, RunFinished, RunRecord, TaskFinished, TaskStarted
from nbflow.store.home import Home
from nbflow.store.serialize import ArtifactRecord

JOURNAL_VERSION = 1
_EVENT_TYPES: dict[str, type[Any]] = {
    "TaskStarted": TaskStarted, "TaskFinished": TaskFinished, "RunFinished": RunFinished,
}
# Fields of an event holding dataclass records, decoded back from their dicts. A new
# event field of records (e.g. a task's lineage) is added here to round-trip as objects.
_RECORD_FIELDS: dict[tuple[str, str], Any] = {
    ("TaskFinished", "artifacts"): ArtifactRecord.from_dict,
}
_COUNTER = itertools.count()
_COUNTER_LOCK = threading.Lock()


def _default(value: Any) -> Any:
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")  # a TIMESTAMP parameter of a journaled statement
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)  # the catalog stores the repr of a value that is not JSON, too


def journal_prefix(home: Home, flow: str, run_id: int) -> str:
    return f"{home.run_prefix(flow, run_id)}/journal"


def heartbeat_path(home: Home, flow: str, run_id: int) -> str:
    return f"{home.run_prefix(flow, run_id)}/heartbeat"


def _entry_name() -> str:
    with _COUNTER_LOCK:
        seq = next(_COUNTER)
    return f"{time.time_ns():020d}-{os.getpid()}-{seq:06d}.json"


def _write(home: Home, flow: str, run_id: int, entry: dict[str, Any]) -> None:
    entry = {"version": JOURNAL_VERSION, **entry}
    text = json.dumps(entry, default=_default)  # key order kept: JSON columns compare as text
    home.write_text(f"{journal_prefix(home, flow, run_id)}/{_entry_name()}", text)


def record_new_run(home: Home, record: RunRecord, run_id: int) -> None:
    _write(home, record.flow, run_id, {"op": "new_run", "run_id": run_id,
                                       "record": dataclasses.asdict(record)})


def record_events(home: Home, events: list[CatalogEvent]) -> None:
    """One journal entry per run the batch touches."""
    by_run: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for event in events:
        data = {"type": type(event).__name__, **dataclasses.asdict(event)}
        by_run.setdefault((event.flow, event.run_id), []).append(data)
    for (flow, run_id), batch in by_run.items():
        _write(home, flow, run_id, {"op": "events", "events": batch})


def record_sql(home: Home, flow: str, run_id: int, statements: list[tuple[str, Any]]) -> None:
    _write(home, flow, run_id, {"op": "sql", "statements": [[s, list(p)] for s, p in statements]})


def beat(home: Home, flow: str, run_id: int) -> None:
    home.write_text(heartbeat_path(home, flow, run_id), repr(time.time()), fsync=False)


def last_beat(home: Home, flow: str, run_id: int) -> float | None:
    """When the run's driver was last alive, if it left a heartbeat."""
    try:
        return float(home.read_text(heartbeat_path(home, flow, run_id)))
    except Exception:  # no heartbeat (an interactive run, an older nbflow) or a torn one
        return None


# -- reading a journal back -------------------------------------------------------------


@dataclass
class RunJournal:
    flow: str
    run_id: int
    record: RunRecord | None
    entries: list[dict[str, Any]]  # "events" and "sql" entries, in order

    @property
    def finished(self) -> bool:
        return any(e.get("type") == "RunFinished"
                   for entry in self.entries for e in entry.get("events", []))

    def events(self) -> Iterator[CatalogEvent | tuple[str, list[Any]]]:
        """Catalog events and (sql, params) statements, in the order they were written."""
        for entry in self.entries:
            if entry["op"] == "events":
                for data in entry["events"]:
                    yield decode_event(data)
            elif entry["op"] == "sql":
                yield from (tuple(statement) for statement in entry["statements"])


def decode_event(data: dict[str, Any]) -> CatalogEvent:
    kind = data["type"]
    cls = _EVENT_TYPES[kind]
    fields = {f.name for f in dataclasses.fields(cls)}
    known = {k: v for k, v in data.items() if k in fields}
    for (event_type, name), decode in _RECORD_FIELDS.items():
        if event_type == kind and name in known:
            known[name] = [decode(item) for item in known[name]]
    event: CatalogEvent = cls(**known)
    return event


def read_journals(home: Home) -> tuple[list[RunJournal], list[str]]:
    """Every run's journal, by flow and run id; and the problems met (unreadable entries)."""
    pattern = home.path("runs", "*", "*", "journal", "*.json")
    paths = sorted(str(p) for p in home.fs.glob(pattern))
    runs: dict[tuple[str, int], RunJournal] = {}
    problems: list[str] = []
    for path in sorted(paths, key=lambda p: p.rsplit("/", 1)[1]):
        try:
            entry = json.loads(home.read_text(path))
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: unreadable journal entry ({exc})")
            continue
        parts = path.rsplit("/", 4)
        flow, run_id = parts[-4], int(parts[-3])
        journal = runs.setdefault((flow, run_id), RunJournal(flow, run_id, None, []))
        if entry.get("op") == "new_run":
            data = entry["record"]
            known = {f.name for f in dataclasses.fields(RunRecord)}
            journal.record = RunRecord(**{k: v for k, v in data.items() if k in known})
        else:
            journal.entries.append(entry)
    return [runs[key] for key in sorted(runs)], problems
