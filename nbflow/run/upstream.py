"""Which runs of other flows a step will read, resolved before it runs (part of its key).

The step's code (and the setup cells') names them through the client API:
``Flow("train").latest_successful_run`` resolves to the newest succeeded run of
``train`` now, ``Run("train/4")`` to itself. When ``train`` runs again and succeeds,
the key of a step that reads its latest successful run changes, so the step runs
again and ``nbflow why`` says "upstream run train/5 replaces train/4".
"""

from __future__ import annotations

import re
from typing import Any

from nbflow.notebook import reads
from nbflow.notebook.spec import NotebookSpec, StepSpec

NONE = "none"  # the flow has no such run yet


def resolve(spec: NotebookSpec, step: StepSpec, catalog: Any) -> dict[str, str]:
    """Each client read of the step → the run it resolves to now (``FLOW/RUN``)."""
    found: dict[str, str] = {}
    for read in reads.notebook_run_reads(spec, step):
        if read.which == "pathspec":
            found[read.label] = "/".join((read.pathspec or "").split("/")[:2])
            continue
        condition = " AND status = 'succeeded'" if read.which == "latest_successful_run" else ""
        rows = catalog.execute_read(
            f"SELECT max(run_id) FROM runs WHERE flow = ?{condition}", [read.flow])
        latest = rows[0][0] if rows else None
        found[read.label] = f"{read.flow}/{latest}" if latest is not None else NONE
    return found


_VIA = re.compile(r"Flow\((['\"])(?P<flow>.+)\1\)\.(?P<which>latest_successful_run|latest_run)\Z")


def stale(lineage: list[dict[str, Any]], catalog: Any) -> list[str]:
    """Why a cached task's recorded reads are out of date: for each run it reached through
    ``Flow(...).latest_successful_run`` / ``latest_run`` (the code may name the flow in a
    variable the analysis cannot read), the run that now replaces it."""
    reasons = []
    for entry in lineage:
        match = _VIA.match(str(entry.get("via") or "")) if entry.get("kind") == "run" else None
        if match is None:
            continue
        flow = match["flow"]
        condition = " AND status = 'succeeded'" if match["which"] == "latest_successful_run" else ""
        rows = catalog.execute_read(
            f"SELECT max(run_id) FROM runs WHERE flow = ?{condition}", [flow])
        latest = rows[0][0] if rows else None
        if latest is not None and latest != entry.get("run"):
            reasons.append(f"upstream run {flow}/{latest} replaces {flow}/{entry.get('run')}")
    return reasons
