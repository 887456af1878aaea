"""Cache keys: everything a task's result depends on, hashed from a normalized projection.

A key covers the step's source (as an AST, so comments, blank lines and formatting
do not count), the setup cells' source, the content hash of every input artifact,
the values of the parameters the step (or setup) reads (canonically encoded, so a set or
a NaN hashes the same in every process), the foreach element, the
content of ``--snapshot`` files, the kernelspec, and the artifact format version.
The parts are kept too, so ``nbflow why`` can say which one changed.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from typing import Any

from nbflow.errors import NbflowError
from nbflow.notebook.names import magic_lines, to_python
from nbflow.notebook.spec import NotebookSpec, StepSpec
from nbflow.store import canonical
from nbflow.store.serialize import FORMAT_VERSION

# Bump when the meaning of a key changes, so old entries stop matching.
# 2: parameter values hashed through nbflow.store.canonical.encode (sets, NaN, dict keys).
KEY_VERSION = 2


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def value_digest(value: Any) -> str:
    """A parameter's value as a key part: the same in every process (sets, NaN, any keys)."""
    return _digest(canonical.encode(value))


def normalized_source(source: str) -> str:
    """The code's meaning: its AST without positions. Comments and layout drop out."""
    python = to_python(source)
    try:
        tree = ast.dump(ast.parse(python))
    except SyntaxError:
        return python  # the task will fail on it anyway; keep the key exact
    return "\n".join([tree, *magic_lines(source)])


@dataclass(frozen=True)
class KeyParts:
    step: str  # normalized source digest
    setup: str
    inputs: dict[str, str] = field(default_factory=dict)  # input name -> content digest
    params: dict[str, str] = field(default_factory=dict)  # parameter name -> value digest
    element: str | None = None
    snapshots: dict[str, str] = field(default_factory=dict)  # file path -> content hash
    kernel: str = "python3"
    options: str = ""  # kind, --as: what the cell binds besides its body
    version: str = f"{KEY_VERSION}/{FORMAT_VERSION}"

    def key(self) -> str:
        return _digest(asdict(self))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyParts:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def setup_digest(spec: NotebookSpec) -> str:
    return _digest([normalized_source(c.source) for c in spec.setup if not c.is_parameters])


def read_parameters(spec: NotebookSpec, step: StepSpec) -> list[str]:
    """Parameters the task depends on: those the step reads, and those setup cells read."""
    names = {p.name for p in spec.parameters}
    return sorted((step.body_reads | spec.setup_inputs) & names)


def input_digest(load_spec: dict[str, Any]) -> str:
    """Content identity of one entry of a task's load plan."""
    kind = load_spec["kind"]
    if kind in ("artifact", "element"):
        record = load_spec["record"]
        return str(record.get("hash") or f"unpersisted:{record.get('reason')}")
    if kind == "namespace":
        return _digest({n: r.get("hash") for n, r in load_spec["records"].items()})
    if kind == "join":
        return _digest([{n: r.get("hash") for n, r in t["records"].items()}
                        for t in load_spec["tasks"]])
    raise ValueError(f"unknown input kind {kind!r}")


def snapshot_files(step: StepSpec, directory: str, store: Any = None) -> dict[str, str]:
    """``--snapshot`` patterns (globs, relative to the notebook) → file path → content hash.

    With ``store`` (an ObjectStore) each file is also copied into it, under that same
    hash, so the run stays reproducible when the file changes later."""
    found: dict[str, str] = {}
    for pattern in step.magic.snapshot:
        matches = sorted(glob.glob(os.path.join(directory, pattern), recursive=True))
        files = [m for m in matches if os.path.isfile(m)]
        if not files:
            raise NbflowError(
                f"--snapshot {pattern} matches no file (looked in {directory})",
                cell=step.cell, step=step.name,
                hint="check the path; it is relative to the notebook's folder",
            )
        for path in files:
            found[os.path.relpath(path, directory)] = (
                _store_file(store, path) if store is not None else _hash_file(path))
    return found


def _hash_file(path: str) -> str:
    import xxhash

    digest = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return str(digest.hexdigest())


def _store_file(store: Any, path: str) -> str:
    """Copy the file into the object store; its name there is the same content hash."""
    with open(path, "rb") as f:
        object_hash, _size = store.put_stream(lambda out: shutil.copyfileobj(f, out))
    return str(object_hash)


def key_parts(
    spec: NotebookSpec,
    step: StepSpec,
    *,
    setup: str,
    params: dict[str, Any],
    load_inputs: list[dict[str, Any]],
    snapshots: dict[str, str],
) -> KeyParts:
    element = None
    inputs: dict[str, str] = {}
    for entry in load_inputs:
        if step.kind == "branch" and entry["name"] == step.magic.as_:
            element = input_digest(entry)
        else:
            inputs[entry["name"]] = input_digest(entry)
    return KeyParts(
        step=_digest(normalized_source(step.source)),
        setup=setup,
        inputs=inputs,
        params={name: value_digest(params.get(name)) for name in read_parameters(spec, step)},
        element=element,
        snapshots=snapshots,
        kernel=step.magic.kernel or spec.kernel_name,
        options=f"{step.kind}:{step.magic.as_ if step.kind == 'branch' else ''}",
    )


def explain(old: KeyParts, new: KeyParts) -> list[str]:
    """What differs between two tasks' key parts, in words."""
    reasons = []
    if old.step != new.step:
        reasons.append("the step's code changed")
    if old.setup != new.setup:
        reasons.append("a setup cell changed")
    for name in sorted(set(old.inputs) | set(new.inputs)):
        if old.inputs.get(name) != new.inputs.get(name):
            reasons.append(f"input {name!r} changed" if name in old.inputs and name in new.inputs
                           else f"it now reads {name!r}" if name in new.inputs
                           else f"it no longer reads {name!r}")
    for name in sorted(set(old.params) | set(new.params)):
        if old.params.get(name) != new.params.get(name):
            reasons.append(f"parameter {name!r} changed")
    if old.element != new.element:
        reasons.append("its foreach element changed")
    for path in sorted(set(old.snapshots) | set(new.snapshots)):
        if old.snapshots.get(path) != new.snapshots.get(path):
            reasons.append(f"snapshot file {path} changed")
    if old.kernel != new.kernel:
        reasons.append(f"kernel {old.kernel!r} → {new.kernel!r}")
    if old.options != new.options:
        reasons.append("the cell's magic options changed")
    if old.version != new.version:
        reasons.append("nbflow's artifact format changed")
    return reasons
