"""Code that runs INSIDE a task kernel: load the step's inputs, persist its outputs.

The generated task notebook calls :func:`load_inputs` before the step's cell and
:func:`persist_outputs` after it. Both take the task's plan as JSON text written by
the driver (``nbflow.kernel.tasknb``). The manifest written at the end of
``persist_outputs`` is the task's completion marker: a task without one did not
finish, whatever else is in the store.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from nbflow.errors import ArtifactUnavailable
from nbflow.kernel.namespace import Namespace
from nbflow.store.home import Home
from nbflow.store.manifest import TaskManifest, write_manifest
from nbflow.store.serialize import (
    ArtifactRecord,
    iterable_elements,
    load_artifact,
    save_artifact,
)

# Inputs up to this size are re-serialized after the step to catch mutations the
# name analysis missed; above it the check would cost more than the step.
MUTATION_CHECK_MAX_BYTES = 16 * 2**20

_state: dict[str, Any] = {}


def load_inputs(ns: dict[str, Any], plan_json: str) -> None:
    """Bind every input the step reads into the kernel's namespace ``ns``."""
    plan = json.loads(plan_json)
    home = Home(plan["home"])
    _state.clear()
    _state.update(started=time.time(), loaded={})
    for spec in plan["inputs"]:
        ns[spec["name"]] = _load_one(home, spec)
    _fingerprint_inputs(ns)


def _fingerprint_inputs(ns: dict[str, Any]) -> None:
    """Fingerprint the loaded artifacts, once all are loaded and pickled a first time:
    pickling an instance caches ``__slotnames__`` on its class (copyreg), and loading
    one re-applies its class's state, so a class fingerprinted before that would look
    changed by a step that never touched it."""
    loaded = _state["loaded"]
    for name, (hash_, size) in loaded.items():
        loaded[name] = (hash_, _fingerprint(ns[name], size))
    for name, (hash_, before) in loaded.items():
        if before is not None:
            loaded[name] = (hash_, _fingerprint(ns[name], 0))


def _load_one(home: Home, spec: dict[str, Any]) -> Any:
    kind = spec["kind"]
    if kind in ("artifact", "element"):
        record = ArtifactRecord.from_dict(spec["record"])
        value = _load_record(home, record, spec.get("producer"))
        if kind == "artifact" and record.hash:
            _state["loaded"][spec["name"]] = (record.hash, record.size)  # fingerprinted later
        return value
    if kind == "namespace":
        return _namespace(home, spec["producer"], spec["index"], spec["records"])
    if kind == "join":
        return [_namespace(home, spec["producer"], t["index"], t["records"]) for t in spec["tasks"]]
    raise ValueError(f"unknown input kind {kind!r}")


def _load_record(home: Home, record: ArtifactRecord, producer: str | None) -> Any:
    if not record.persisted:
        raise ArtifactUnavailable(
            f"{record.name!r} was not stored by step {producer!r}: {record.reason}",
            step=producer,
            hint=f"make {record.name!r} serializable with cloudpickle in step {producer!r}, "
            "or rebuild it in the step that reads it",
        )
    return load_artifact(home.objects, record)


def _namespace(home: Home, producer: str, index: int, records: dict[str, Any]) -> Namespace:
    parsed = {name: ArtifactRecord.from_dict(r) for name, r in records.items()}

    def loader(name: str) -> Any:
        return _load_record(home, parsed[name], f"{producer}[{index}]")

    return Namespace(label=f"{producer}[{index}]", lazy=set(parsed), loader=loader)


def persist_outputs(ns: dict[str, Any], plan_json: str) -> None:
    """Store the step's outputs, then write the manifest (last)."""
    plan = json.loads(plan_json)
    home = Home(plan["home"])
    ended = time.time()
    artifacts = [
        save_artifact(home.objects, name, ns[name])
        for name in plan["outputs"]
        if name in ns and not name.startswith("_")
    ]
    splits = {
        name: [save_artifact(home.objects, f"{name}[{i}]", v) for i, v in enumerate(items)]
        for name in plan.get("splits", [])
        if (items := iterable_elements(ns.get(name))) is not None
    }
    missing = [n for n in plan["outputs"] if n not in ns and not n.startswith("_")]
    warnings = _mutation_warnings(plan, ns)
    manifest = TaskManifest(
        flow=plan["flow"],
        run=plan["run"],
        step=plan["step"],
        index=plan["index"],
        artifacts=artifacts,
        input_hashes={n: h for n, (h, _) in _state.get("loaded", {}).items()},
        started=_state.get("started", ended),
        ended=ended,
        pid=os.getpid(),
        peak_memory=peak_memory_bytes(),
        python=sys.version.split()[0],
        packages=_imported_packages(),
        warnings=warnings,
        splits=splits,
        unbound=missing,
        lineage=_lineage(),
    )
    write_manifest(home, manifest)


def peak_memory_bytes(platform: str = sys.platform) -> int:
    """This process's peak resident memory in bytes: ``ru_maxrss`` counts KiB on Linux and
    bytes on macOS; where there is no ``resource`` module (Windows), psutil's peak set."""
    try:
        import resource
    except ImportError:
        import psutil

        info = psutil.Process().memory_info()
        return int(getattr(info, "peak_wset", info.rss))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if platform == "darwin" else peak * 1024)


def _lineage() -> list[dict[str, Any]]:
    """What the task read of other runs through the client API (only if it used it).

    The kernel is the task's own (fresh or forked from a template that ran setup): what
    it logged, setup cells included, is this task's reading."""
    lineage = sys.modules.get("nbflow.client.lineage")
    return lineage.collected() if lineage is not None else []


def _fingerprint(value: Any, size: int) -> str | None:
    """A hash of the value as loaded, to compare with the same value after the step.

    Compared within one kernel (not against the stored bytes), because a value
    unpickled and pickled again need not give the producer's bytes back.
    """
    if size > MUTATION_CHECK_MAX_BYTES:
        return None
    import cloudpickle
    import xxhash

    try:
        return xxhash.xxh3_128_hexdigest(cloudpickle.dumps(value, protocol=5))
    except Exception:  # unpicklable inputs cannot be checked; that is not the step's fault
        return None


def _mutation_warnings(plan: dict[str, Any], ns: dict[str, Any]) -> list[str]:
    """Inputs whose content changed although the step does not republish them."""
    warnings = []
    outputs = set(plan["outputs"])
    for name, (_hash, before) in _state.get("loaded", {}).items():
        if before is None or name in outputs or name not in ns:
            continue
        if _fingerprint(ns[name], 0) != before:
            warnings.append(
                f"step {plan['step']!r} changed input {name!r} in place, but nbflow did not "
                f"see it as an output, so downstream steps get the unchanged {name!r}; "
                f"assign it (`{name} = ...`) to publish the change"
            )
    return warnings


class _ImportLog:
    """A meta-path finder that only notes the top-level names imported after a fork
    server's snapshot (and finds nothing): a task lists its packages from the snapshot
    plus these, without touching every preloaded module (each touch is a copy-on-write
    page fault in a forked child)."""

    def __init__(self) -> None:
        self.names: dict[str, None] = {}

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if path is None:
            self.names[name] = None
        return None


# Taken by a fork server before it forks: top-level name -> (module, its version).
_snapshot: dict[str, tuple[Any, str]] | None = None
_import_log = _ImportLog()


def prepare_fork() -> None:
    """Work every task would repeat, done once in the fork server before it forks."""
    global _snapshot
    from nbflow.store.serializers import scan_entry_points

    scan_entry_points()
    if _import_log not in sys.meta_path:
        sys.meta_path.insert(0, _import_log)
    _import_log.names.clear()
    _snapshot = {name: (sys.modules[name], version)
                 for name, version in _versions(list(sys.modules)).items()}


def _imported_packages() -> dict[str, str]:
    """Versions of the third-party top-level modules this kernel imported."""
    if _snapshot is None:
        return dict(sorted(_versions(list(sys.modules)).items()))
    found = {name: version for name, (module, version) in _snapshot.items()
             if sys.modules.get(name) is module}
    found.update(_versions([n for n in _import_log.names if n not in _snapshot]))
    return dict(sorted(found.items()))


def _versions(names: list[str]) -> dict[str, str]:
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    found = {}
    for name in names:
        if "." in name or name.startswith("_") or name in stdlib:
            continue
        version = getattr(sys.modules.get(name), "__version__", None)
        if isinstance(version, str):
            found[name] = version
    return found
