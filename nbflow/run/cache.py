"""Cache keys: everything a task's result depends on, hashed from a normalized projection.

A key covers the step's source (as an AST, so comments, blank lines and formatting
do not count), the setup cells' source, the content hash of every input artifact,
the values of the parameters the step (or setup) reads (canonically encoded, so a set or
a NaN hashes the same in every process), the foreach element, the
content of ``--snapshot`` files and of the files the code names (``open("x.csv")``,
``pd.read_csv(f"data/{name}.csv")``: see ``nbflow.notebook.reads``) and of the
notebook folder's own modules it imports (``import helpers``: ``nbflow.notebook.modules``), the runs of
other flows it reads through the client API (``Flow("train").latest_successful_run``),
the kernelspec, and the artifact format version.
The parts are kept too, so ``nbflow why`` can say which one changed.
"""

from __future__ import annotations

import ast
import functools
import glob
import hashlib
import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from typing import Any

from nbflow.errors import NbflowError
from nbflow.notebook import reads
from nbflow.notebook.modules import step_modules
from nbflow.notebook.names import magic_lines, parsed, to_python
from nbflow.notebook.spec import NotebookSpec, StepSpec
from nbflow.store import canonical
from nbflow.store.serialize import FORMAT_VERSION

# Bump when the meaning of a key changes, so old entries stop matching.
# 2: parameter values hashed through nbflow.store.canonical.encode (sets, NaN, dict keys).
# 3: parts ``files`` (files the code reads) and ``upstream`` (runs it reads).
KEY_VERSION = 3


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def value_digest(value: Any) -> str:
    """A parameter's value as a key part: the same in every process (sets, NaN, any keys)."""
    return _digest(canonical.encode(value))


@functools.lru_cache(maxsize=8192)  # a pure function of the text
def normalized_source(source: str) -> str:
    """The code's meaning: its AST without positions. Comments and layout drop out."""
    tree = parsed(source)
    if tree is None:
        return to_python(source)  # the task will fail on it anyway; keep the key exact
    return "\n".join([ast.dump(tree), *magic_lines(source)])


@dataclass(frozen=True)
class KeyParts:
    step: str  # normalized source digest
    setup: str
    inputs: dict[str, str] = field(default_factory=dict)  # input name -> content digest
    params: dict[str, str] = field(default_factory=dict)  # parameter name -> value digest
    element: str | None = None
    snapshots: dict[str, str] = field(default_factory=dict)  # file path -> content hash
    files: dict[str, str] = field(default_factory=dict)  # path the code reads -> content hash
    upstream: dict[str, str] = field(default_factory=dict)  # client read -> run it resolves to
    kernel: str = "python3"
    options: str = ""  # kind, --as: what the cell binds besides its body
    version: str = f"{KEY_VERSION}/{FORMAT_VERSION}"

    def key(self) -> str:
        return _digest(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        # asdict's deep copy, without the cost: every field is a str, None or a flat
        # dict of str (the same JSON, so the same key)
        return {name: (dict(value) if isinstance(value, dict) else value)
                for name in self.__dataclass_fields__
                for value in (getattr(self, name),)}

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


_SETUP_SNAPSHOT = re.compile(r"^[ \t]*%nbflow[ \t]+snapshot[ \t]+(.+)$", re.MULTILINE)


def setup_snapshots(spec: NotebookSpec) -> list[tuple[int, str]]:
    """``%nbflow snapshot GLOB...`` lines in setup cells: (cell, pattern) pairs."""
    found = []
    for cell in spec.setup:
        for match in _SETUP_SNAPSHOT.finditer(cell.source):
            found += [(cell.cell, p) for p in shlex.split(match.group(1), comments=True)]
    return found


def snapshot_files(step: StepSpec, directory: str, store: Any = None,
                   spec: NotebookSpec | None = None) -> dict[str, str]:
    """``--snapshot`` patterns (globs, relative to the notebook) → file path → content hash.

    With ``spec``, the setup cells' ``%nbflow snapshot`` patterns count too. With
    ``store`` (an ObjectStore) each file is also copied into it, under that same hash,
    so the run stays reproducible when the file changes later."""
    found: dict[str, str] = {}
    patterns = [*(setup_snapshots(spec) if spec is not None else []),
                *((step.cell, p) for p in step.magic.snapshot)]
    for cell, pattern in patterns:
        matches = sorted(glob.glob(os.path.join(directory, pattern), recursive=True))
        files = [m for m in matches if os.path.isfile(m)]
        if not files:
            where = "--snapshot" if cell == step.cell else "%nbflow snapshot"
            raise NbflowError(
                f"{where} {pattern} matches no file (looked in {directory})",
                cell=cell, step=step.name,
                hint="check the path; it is relative to the notebook's folder",
            )
        for path in files:
            found[os.path.relpath(path, directory)] = (
                _store_file(store, path) if store is not None else _hash_file(path))
    return found


def read_files(spec: NotebookSpec, step: StepSpec, params: dict[str, Any], directory: str,
               hashes: Any) -> dict[str, str]:
    """Files the step's code (or a setup cell) names → content hash (``hashes``: FileHashes)."""
    found: dict[str, str] = {}
    for read in reads.notebook_file_reads(spec, step):
        path = read.resolve(params)
        if path is None:
            continue
        shown = os.path.normpath(path)
        found[shown] = hashes.hash(os.path.join(directory, os.path.expanduser(path)))
    for module in step_modules(spec, step, directory):
        found[module] = hashes.hash(os.path.join(directory, module))
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
    files: dict[str, str] | None = None,
    upstream: dict[str, str] | None = None,
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
        files=files or {},
        upstream=upstream or {},
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
    for path in sorted(set(old.files) | set(new.files)):
        if old.files.get(path) != new.files.get(path):
            reasons.append(f"file {path} changed" if path in old.files and path in new.files
                           else f"it now reads file {path}" if path in new.files
                           else f"it no longer reads file {path}")
    for read in sorted(set(old.upstream) | set(new.upstream)):
        before, after = old.upstream.get(read), new.upstream.get(read)
        if before != after:
            reasons.append(f"upstream run {after} replaces {before}" if before and after
                           else f"it now reads upstream run {after}" if after
                           else f"it no longer reads upstream run {before}")
    if old.kernel != new.kernel:
        reasons.append(f"kernel {old.kernel!r} → {new.kernel!r}")
    if old.options != new.options:
        reasons.append("the cell's magic options changed")
    if old.version != new.version:
        reasons.append("nbflow's artifact format changed")
    return reasons
