"""Serializers by type, consulted before cloudpickle.

A serializer stores values of one type (and its subclasses) as bytes and reads them
back. They come from three places, looked up in this order:

1. ``nbflow.register_serializer(type, save, load, name=...)`` in this process;
2. the entry-point group ``nbflow.serializers`` (loaded on first use; each entry point
   names an object with ``type``, ``save`` and ``load``, and optionally ``name``);
3. the built-ins: NumPy arrays as ``.npy`` (memory-mapped on read) and pandas
   DataFrames as Arrow IPC (see ``serialize.py``).

The artifact record's ``format`` names the serializer, so any process can read the
object back: built-ins and entry points by name, and a serializer registered with the
Python API from the object itself, whose bytes start with its cloudpickled ``load``
function (a module-level function pickles as a reference, one defined in a notebook
by value).

Imported in task kernels: numpy, pandas and cloudpickle only when a value needs them.
"""

from __future__ import annotations

import builtins as _builtins
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from nbflow.errors import StoreError

ENTRY_POINT_GROUP = "nbflow.serializers"
ENVELOPE_FORMAT_PREFIX = "custom:"
_ENVELOPE_MAGIC = b"NBFLOWSER1\n"

Save = Callable[[Any, BinaryIO], None]
Load = Callable[[BinaryIO], Any]


class Decline(Exception):
    """Raised by a serializer's ``save`` before writing anything: let the next one try."""


@dataclass(frozen=True)
class Serializer:
    """Stores values whose type is (a subclass of) ``type``.

    ``type`` is a class or its qualified name (``"numpy.ndarray"``), so that a
    serializer can be declared without importing the library it serves.
    ``save(value, file)`` writes to a binary file; ``load(file)`` reads it back.
    ``load_path(path)``, if given, reads from a local file instead (to memory-map).
    ``accepts(value)`` may decline a value of the right type (then the next
    serializer, and finally cloudpickle, is tried).
    """

    name: str
    type: _builtins.type | str | tuple[str, ...]
    save: Save
    load: Load
    load_path: Callable[[str], Any] | None = None
    accepts: Callable[[Any], bool] | None = None
    origin: str = "api"  # api | entry point | builtin

    def matches(self, cls: _builtins.type) -> bool:
        if isinstance(self.type, (str, tuple)):
            names = {self.type} if isinstance(self.type, str) else set(self.type)
            return any(_qualified(c) in names for c in cls.__mro__)
        return issubclass(cls, self.type)


_registered: list[Serializer] = []
_entry_points: list[Serializer] | None = None
_declared: list[Any] | None = None  # the group's EntryPoint objects, not yet loaded


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_serializer(
    type: type | str, save: Save, load: Load, *, name: str | None = None,
) -> Serializer:
    """Store values of ``type`` with ``save(value, file)``; read them with ``load(file)``.

    Registered in this process, ahead of entry points and built-ins; the latest
    registration for a type wins. Objects stored this way carry their ``load``
    function, so a kernel, a driver or the client can read them without registering.
    """
    label = name or (type if isinstance(type, str) else _qualified(type))
    if not callable(save) or not callable(load):
        raise TypeError("register_serializer(type, save, load): save and load must be callable")
    serializer = Serializer(name=label, type=type, save=save, load=load)
    _registered[:] = [s for s in _registered if s.type != type and s.name != label]
    _registered.insert(0, serializer)
    return serializer


def register_hint(type_name: str) -> str:
    """How to make a value of ``type_name`` storable, for "could not be stored" errors."""
    short = type_name.rsplit(".", 1)[-1]
    return (f"register a serializer for {type_name} before the step binds it, e.g. "
            f"`nbflow.register_serializer({short}, save=lambda obj, f: ..., "
            f"load=lambda f: ...)` in a setup cell, or ship one in the entry-point group "
            f"{ENTRY_POINT_GROUP!r}; or rename the variable with a leading '_' to keep it "
            "private to its step")


def unregister_serializer(name: str) -> None:
    _registered[:] = [s for s in _registered if s.name != name]


def entry_point_serializers() -> list[Serializer]:
    """Serializers from the ``nbflow.serializers`` entry points, loaded once per process."""
    global _entry_points
    if _entry_points is None:
        _entry_points = _load_entry_points()
    return _entry_points


def scan_entry_points() -> list[Any]:
    """The group's declared entry points, read from the installed metadata once.

    Reading every distribution's metadata costs ≈25 ms; a fork server does it once
    before it forks (loading them, which imports their modules, stays in the task)."""
    global _declared
    if _declared is None:
        if not _may_declare(ENTRY_POINT_GROUP):
            _declared = []
        else:
            from importlib.metadata import entry_points

            _declared = list(entry_points(group=ENTRY_POINT_GROUP))
    return _declared


def _may_declare(group: str, path: list[str] | None = None,
                 finders: list[Any] | None = None) -> bool:
    """False only if no distribution ``importlib.metadata`` would see declares ``group``:
    no ``*.dist-info/entry_points.txt`` in a ``sys.path`` folder names it, and nothing
    else could (an ``.egg-info``, a zip on the path, a finder of distributions of its
    own). Opening those few files costs ≈2 ms; ``entry_points()`` reads every
    distribution's metadata (≈25 ms, a cached re-run's foreach elements pay it)."""
    import os
    import sys

    standard = ("PathFinder", "BuiltinImporter", "FrozenImporter", "DistutilsMetaFinder")
    if any(hasattr(f, "find_distributions") and getattr(f, "__name__", type(f).__name__)
           not in standard for f in (sys.meta_path if finders is None else finders)):
        return True
    header = f"[{group}]"
    for entry in sys.path if path is None else path:
        folder = entry or "."
        try:
            names = os.listdir(folder)
        except OSError:
            if os.path.isfile(folder):
                return True  # a zip or an egg: importlib reads inside it
            continue
        for name in names:
            if name.endswith(".egg-info") or name.endswith(".egg"):
                return True
            if not name.endswith(".dist-info"):
                continue
            try:
                with open(os.path.join(folder, name, "entry_points.txt"), encoding="utf-8",
                          errors="replace") as f:
                    if any(line.strip() == header for line in f):
                        return True
            except OSError:
                continue
    return False


def _load_entry_points() -> list[Serializer]:
    found = []
    for ep in scan_entry_points():
        try:
            obj = ep.load()
        except Exception as exc:
            raise StoreError(
                f"serializer entry point {ep.name!r} ({ep.value}) could not be loaded: "
                f"{type(exc).__name__}: {exc}",
                hint=f"fix or uninstall the package that declares it in {ENTRY_POINT_GROUP!r}",
            ) from exc
        if isinstance(obj, Serializer):
            found.append(Serializer(**{**obj.__dict__, "name": ep.name, "origin": "entry point"}))
            continue
        missing = [a for a in ("type", "save", "load") if not hasattr(obj, a)]
        if missing:
            raise StoreError(
                f"serializer entry point {ep.name!r} ({ep.value}) has no {', '.join(missing)}",
                hint="an entry point names an object with attributes type, save(value, file) "
                "and load(file)",
            )
        found.append(Serializer(
            name=ep.name, type=obj.type, save=obj.save, load=obj.load,
            load_path=getattr(obj, "load_path", None), accepts=getattr(obj, "accepts", None),
            origin="entry point"))
    return found


def reset_entry_points() -> None:
    """Forget loaded entry points (tests; a changed environment)."""
    global _entry_points, _declared
    _entry_points = None
    _declared = None


def registered() -> list[Serializer]:
    return list(_registered)


def for_value(value: object) -> Serializer | None:
    """The first serializer that takes ``value``, or None (then cloudpickle)."""
    cls = type(value)
    for serializer in [*_registered, *entry_point_serializers(), *builtins()]:
        if serializer.matches(cls) and (serializer.accepts is None or serializer.accepts(value)):
            return serializer
    return None


def by_name(name: str) -> Serializer | None:
    for serializer in [*builtins(), *entry_point_serializers(), *_registered]:
        if serializer.name == name:
            return serializer
    return None


def format_of(serializer: Serializer) -> str:
    """What the artifact record's ``format`` says, for reading it back."""
    if serializer.origin == "api":
        return ENVELOPE_FORMAT_PREFIX + serializer.name
    return serializer.name


def save_with(serializer: Serializer, value: object, f: BinaryIO) -> None:
    if serializer.origin == "api":
        import cloudpickle

        loader = cloudpickle.dumps(serializer.load, protocol=5)
        f.write(_ENVELOPE_MAGIC + struct.pack("<Q", len(loader)) + loader)
    serializer.save(value, f)


def load_envelope(f: BinaryIO) -> Any:
    """Read an object stored by an API-registered serializer: its loader, then its value."""
    import pickle

    if f.read(len(_ENVELOPE_MAGIC)) != _ENVELOPE_MAGIC:
        raise ValueError("the object does not start with a serializer envelope")
    (size,) = struct.unpack("<Q", f.read(8))
    load = pickle.loads(f.read(size))
    return load(f)


# -- built-ins ---------------------------------------------------------------------


def _save_npy(value: Any, f: BinaryIO) -> None:
    import numpy as np

    np.save(f, value, allow_pickle=False)


def _load_npy(f: BinaryIO) -> Any:
    import numpy as np

    return np.load(f, allow_pickle=False)


def _load_npy_path(path: str) -> Any:
    import numpy as np

    try:
        # Copy-on-write: the task may modify its input without touching the store. A
        # plain ndarray view of the map, so that the type is what the producer had.
        mapped = np.load(path, mmap_mode="c", allow_pickle=False)
    except ValueError:  # an empty array cannot be mapped
        return np.load(path, allow_pickle=False)
    return mapped.view(np.ndarray)


def _npy_accepts(value: Any) -> bool:
    # Subclasses (masked arrays, matrix) and object arrays would lose what makes them
    # what they are in .npy: cloudpickle keeps them.
    cls = type(value)
    return (cls.__module__ == "numpy" and cls.__name__ in ("ndarray", "memmap")
            and not value.dtype.hasobject)


_BUILTINS: list[Serializer] = []


def builtins() -> list[Serializer]:
    if not _BUILTINS:
        from nbflow.store import serialize

        _BUILTINS.extend([
            Serializer(name="npy", type="numpy.ndarray", save=_save_npy, load=_load_npy,
                       load_path=_load_npy_path, accepts=_npy_accepts, origin="builtin"),
            Serializer(name="arrow", type=("pandas.DataFrame", "pandas.core.frame.DataFrame"),
                       save=serialize.save_arrow_frame, load=serialize.load_arrow_frame,
                       origin="builtin"),
        ])
    return _BUILTINS
