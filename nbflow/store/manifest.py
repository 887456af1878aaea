"""The task manifest: what a task produced, written LAST as its completion marker.

A task directory without ``manifest.json`` is incomplete (the task died or is
still running), whatever else it holds. Imported in task kernels: stdlib only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from nbflow.errors import StoreError
from nbflow.store.home import Home
from nbflow.store.serialize import ArtifactRecord

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


@dataclass
class TaskManifest:
    flow: str
    run: int
    step: str
    index: int
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    input_hashes: dict[str, str] = field(default_factory=dict)  # input name -> object hash
    started: float = 0.0  # epoch seconds
    ended: float = 0.0
    pid: int = 0
    peak_memory: int = 0  # bytes
    python: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Outputs that downstream branches iterate: one record per element, in order.
    splits: dict[str, list[ArtifactRecord]] = field(default_factory=dict)
    unbound: list[str] = field(default_factory=list)  # outputs the step did not bind when it ran
    # What the task read of other runs through the client API, in the order it read it:
    # {"kind": "run"|"artifact", "flow", "run", ["step", "index", "name", "hash"], "via"};
    # one row each in the catalog's ``lineage`` table.
    lineage: list[dict[str, Any]] = field(default_factory=list)

    def artifact(self, name: str) -> ArtifactRecord | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = MANIFEST_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskManifest:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["artifacts"] = [ArtifactRecord.from_dict(a) for a in known.get("artifacts", [])]
        known["splits"] = {
            name: [ArtifactRecord.from_dict(a) for a in records]
            for name, records in known.get("splits", {}).items()
        }
        return cls(**known)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TaskManifest:
        return cls.from_dict(json.loads(text))


def manifest_path(home: Home, flow: str, run: int | str, step: str, index: int | str) -> str:
    return f"{home.task_prefix(flow, run, step, index)}/{MANIFEST_NAME}"


def write_manifest(home: Home, manifest: TaskManifest, *, fsync: bool | None = None) -> str:
    """Write the manifest atomically; call it after every object of the task is stored."""
    path = manifest_path(home, manifest.flow, manifest.run, manifest.step, manifest.index)
    home.write_text(path, manifest.to_json(), fsync=fsync)
    return path


def read_manifest(
    home: Home, flow: str, run: int | str, step: str, index: int | str
) -> TaskManifest | None:
    """The task's manifest, or ``None`` if the task has not completed."""
    path = manifest_path(home, flow, run, step, index)
    if not home.exists(path):
        return None
    text = home.read_text(path)
    try:
        return TaskManifest.from_json(text)
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"manifest {path} is unreadable: {exc}", step=step, path=path) from exc
