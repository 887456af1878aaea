"""What this process read of other runs through the client API: a task's lineage.

The client notes each read here: a run it resolved (``Flow("train").latest_successful_run``,
``Run("train/4")``) and each artifact whose value it loaded (``run.data.model``, an
``artifact(...)`` table in ``nbflow.sql``). A task's kernel starts each task with an
empty log (``nbflow.kernel.runtime`` clears it) and writes what it holds at the end
into the task's manifest as ``lineage``, a list of these dicts; the catalog's
``lineage`` table has one row per dict (``nbflow.store.catalog.lineage_rows``), so it
rebuilds from manifests.

A read entry is a dict with ``kind`` ("run" or "artifact"), ``flow``, ``run``, and for
an artifact ``step``, ``index``, ``name`` and ``hash``; ``via`` says how it was reached
(``Flow('train').latest_successful_run``, ``Run('train/4')``, ``data``, ``sql``).
"""

from __future__ import annotations

from typing import Any

_log: dict[tuple[Any, ...], dict[str, Any]] = {}


def note_run(flow: str, run: int, via: str) -> None:
    entry = {"kind": "run", "flow": flow, "run": int(run), "via": via}
    _log.setdefault(("run", flow, int(run), via), entry)


def note_artifact(flow: str, run: int, step: str, index: int | None, name: str,
                  hash: str | None, via: str) -> None:
    entry = {"kind": "artifact", "flow": flow, "run": int(run), "step": step,
             "index": 0 if index is None else int(index), "name": name, "hash": hash,
             "via": via}
    _log.setdefault(("artifact", flow, int(run), step, entry["index"], name), entry)


def collected() -> list[dict[str, Any]]:
    """The reads so far, in the order they were first made."""
    return [dict(e) for e in _log.values()]


def clear() -> None:
    _log.clear()
