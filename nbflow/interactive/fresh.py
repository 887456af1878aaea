"""Each live ``%%branch`` element gets the namespace as it was before the branch.

Headless, every branch task loads its inputs from the store into its own kernel, so a
body that mutates a value in place (``del d[k]``, ``acc.append(k)``) changes only its
own copy. Live, the elements run one after another in one kernel; to give them the same
view, every data value the body reads is serialized once, before the first element, and
each element gets its own copy loaded from those bytes (as a task would). Modules,
functions and classes are shared, as a task's setup cells would rebuild them anyway;
a value that cannot be pickled is deep-copied, or shared if even that fails.
"""

from __future__ import annotations

import copy
import io
import types
from collections.abc import Iterable
from typing import Any

from nbflow.store import canonical

_SHARED = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type,
           types.MethodType)


class Snapshot:
    """The values of ``names`` in ``namespace``, frozen; ``view()`` gives a fresh copy."""

    def __init__(self, namespace: dict[str, Any], names: Iterable[str]) -> None:
        self._frozen: dict[str, bytes] = {}
        self._other: dict[str, Any] = {}
        for name in names:
            if name not in namespace:
                continue
            value = namespace[name]
            if isinstance(value, _SHARED):
                continue
            try:
                self._frozen[name] = canonical.dumps(value)
            except Exception:  # unpicklable: a deep copy is the next best independent view
                self._other[name] = value

    def view(self) -> dict[str, Any]:
        values = {n: canonical.load(io.BytesIO(b)) for n, b in self._frozen.items()}
        for name, value in self._other.items():
            try:
                values[name] = copy.deepcopy(value)
            except Exception:  # neither picklable nor copyable: shared, as before
                values[name] = value
        return values


def fresh(value: Any) -> Any:
    """One value as a task would load it: a copy from its serialized form."""
    return Snapshot({"v": value}, ["v"]).view().get("v", value)
