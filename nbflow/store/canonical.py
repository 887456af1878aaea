"""Values as the same bytes in every process, whatever ``PYTHONHASHSEED`` says.

A set's iteration order follows its elements' hashes, and ``str`` hashes are salted per
process, so ``pickle.dumps({"a", "b"})`` differs between two interpreters. Cache keys
hash parameters and stored artifacts, so they must not see that order:

- :func:`encode` turns a parameter value into a JSON-able form in which a set is sorted,
  a dict with non-string keys is a sorted list of pairs, and NaN and infinities are
  tagged (``json`` would write ``NaN``, or collapse ``{1: x}`` and ``{"1": x}``);
- :func:`dump` pickles with every set and frozenset written sorted (through
  ``persistent_id``, the one hook the C pickler consults for a set), and :func:`load`
  reads that back.

Imported in task kernels: cloudpickle is imported only when a value is pickled.
"""

from __future__ import annotations

import functools
import io
import json
import math
import pickle
from typing import Any, BinaryIO

_SET_TAG = "nbflow.set"
_FROZENSET_TAG = "nbflow.frozenset"
_FAST_SORT = (int, str, bytes)  # totally ordered, and their order is not the hash order


def encode(value: Any) -> Any:
    """A JSON-able projection of ``value`` that is equal in every process iff the value is."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return {"int": str(value)} if abs(value) > 2**53 else value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, (list, tuple)):
        items = [encode(v) for v in value]
        return items if isinstance(value, list) else {"tuple": items}
    if isinstance(value, (set, frozenset)):
        kind = "set" if isinstance(value, set) else "frozenset"
        return {kind: sorted((encode(v) for v in value), key=_text)}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"dict": {k: encode(v) for k, v in value.items()}}
        pairs = [[encode(k), encode(v)] for k, v in value.items()]
        return {"pairs": sorted(pairs, key=_text)}
    return {"pickle": _pickle_digest(value)}


def _text(encoded: Any) -> str:
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"))


def _pickle_digest(value: Any) -> str:
    import hashlib

    try:
        return hashlib.sha256(dumps(value)).hexdigest()
    except Exception:  # an unpicklable parameter: its repr is the best identity left
        return f"repr:{value!r}"


def dump(value: Any, f: BinaryIO) -> None:
    """cloudpickle ``value`` (protocol 5) into ``f``, sets in a process-independent order."""
    _pickler_class()(f, protocol=5).dump(value)


def dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    dump(value, buffer)
    return buffer.getvalue()


def load(f: BinaryIO) -> Any:
    """Read what :func:`dump` wrote (or any plain pickle)."""
    return _Unpickler(f).load()


@functools.cache
def _pickler_class() -> type:
    import cloudpickle

    class CanonicalPickler(cloudpickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            kind = type(obj)
            if kind is set:
                return (_SET_TAG, _sorted(obj))
            if kind is frozenset:
                return (_FROZENSET_TAG, _sorted(obj))
            return None

    return CanonicalPickler


def _sorted(items: set[Any] | frozenset[Any]) -> list[Any]:
    kinds = {type(v) for v in items}
    if len(kinds) == 1 and next(iter(kinds)) in _FAST_SORT:
        return sorted(items)
    return sorted(items, key=dumps)  # mixed or unordered elements: by their own bytes


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 2:
            if pid[0] == _SET_TAG:
                return set(pid[1])
            if pid[0] == _FROZENSET_TAG:
                return frozenset(pid[1])
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
