"""The elements of a setup-defined ``--foreach``, remembered by key.

Only a kernel that runs the setup cells can list them (the driver never runs user
code), so a re-run would start one kernel even when every task is cached. The list is
kept at ``<home>/splits/<flow>/<key>.json``, keyed like a task by everything it
depends on: the setup cells, the parameters they read, the name, the kernelspec and
the key and format versions. Its records point at stored objects; an entry whose
objects are gone is not used.
"""

from __future__ import annotations

import json
from typing import Any

from nbflow.notebook.spec import NotebookSpec, StepSpec
from nbflow.run import cache
from nbflow.store.home import Home
from nbflow.store.serialize import ArtifactRecord


def split_key(spec: NotebookSpec, step: StepSpec, name: str, *, setup: str,
              params: dict[str, Any]) -> str:
    read = sorted(spec.setup_inputs & {p.name for p in spec.parameters})
    parts = {
        "setup": setup, "name": name, "kernel": step.magic.kernel or spec.kernel_name,
        "params": {n: cache.value_digest(params.get(n)) for n in read},
        "version": f"{cache.KEY_VERSION}/{cache.FORMAT_VERSION}",
    }
    return cache.value_digest(parts)


def _path(home: Home, flow: str, key: str) -> str:
    return home.path("splits", flow, f"{key}.json")


def remembered(home: Home, flow: str, key: str) -> list[ArtifactRecord] | None:
    path = _path(home, flow, key)
    if not home.exists(path):
        return None
    try:
        records = [ArtifactRecord.from_dict(r) for r in json.loads(home.read_text(path))["elements"]]
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: list them again
    if not all(r.persisted and r.hash and home.objects.exists(r.hash) for r in records):
        return None
    return records


def remember(home: Home, flow: str, key: str, records: list[ArtifactRecord],
             origin: str) -> None:
    text = json.dumps({"origin": origin, "elements": [r.to_dict() for r in records]},
                      sort_keys=True)
    home.write_text(_path(home, flow, key), text)
