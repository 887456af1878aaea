"""Artifacts: a task's variables turned into stored objects plus a catalog record.

A pandas DataFrame is stored as an Arrow IPC file (uncompressed): DuckDB queries
it through pyarrow, and it loads by memory-mapping plus one copy into pandas.
It was chosen over Parquet (uncompressed, no dictionary, no statistics) by
``benchmarks/artifacts.py`` on a 1e7 x 5 float64 frame (400 MB), fsync on, as
ratios to ``dd conv=fdatasync`` measured in the same run (2 cores, load 2.6-3.7):

    format        write       read (page cache)   read (evicted, from disk)
    Arrow IPC     0.89-1.15   3.6-5.7             1.4-1.9
    Parquet       0.40-0.64   0.6-1.6             0.6-0.8

NumPy arrays are stored as ``.npy`` and memory-mapped (copy-on-write) on read.
Other types may have a serializer (``nbflow.store.serializers``: registered with
``nbflow.register_serializer`` or found through entry points); everything else is
cloudpickled (protocol 5) straight into the store. Saving never raises: an object
that cannot be serialized is recorded with ``persisted=False`` and the reason.

Imported in task kernels: pandas, pyarrow and cloudpickle are imported only when
a value needs them.
"""

from __future__ import annotations

import functools
import io
import json
import math
import reprlib
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

from nbflow.errors import ArtifactUnavailable, StoreError
from nbflow.store import canonical, serializers
from nbflow.store.objects import ObjectStore

# Part of every cache key: bump when the bytes an artifact is stored as change.
# 2: sets and frozensets are pickled sorted (nbflow.store.canonical).
# 3: NumPy arrays as .npy; serializers by type (format names the serializer).
FORMAT_VERSION = 3

Format = str  # "pickle", or a serializer's name: "arrow", "npy", "custom:NAME", ...
_REPR_MAX = 200

_repr = reprlib.Repr()
_repr.maxstring = 120
_repr.maxother = _REPR_MAX
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 10


@dataclass
class ArtifactRecord:
    """What the catalog and the manifest know about one artifact."""

    name: str
    type: str  # qualified type name, e.g. "pandas.core.frame.DataFrame"
    hash: str | None = None  # ObjectHash
    size: int = 0
    format: Format | None = None
    repr: str = ""
    shape: list[int] | None = None
    schema: dict[str, str] | None = None  # column -> dtype, for DataFrames
    metric: float | None = None  # numeric scalars (finite), bools as 0/1
    persisted: bool = False
    reason: str | None = None  # why not persisted

    def to_dict(self) -> dict[str, Any]:
        # asdict's deep copy without its cost (a 400-step plan makes hundreds): every
        # field is a scalar, a flat list of ints or a flat dict of str (the same dict)
        return {name: (value.copy() if isinstance(value, (list, dict)) else value)
                for name in self.__dataclass_fields__
                for value in (getattr(self, name),)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ArtifactRecord:
        return cls.from_dict(json.loads(text))


def type_name(value: object) -> str:
    cls = type(value)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    # The public name when the top-level package exports the class (pandas < 3 reports
    # pandas.core.frame.DataFrame, pandas 3 pandas.DataFrame): one name across versions.
    top = module.split(".")[0]
    if getattr(sys.modules.get(top), cls.__qualname__, None) is cls:
        return f"{top}.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


# -- describing a value -----------------------------------------------------------


def short_repr(value: object) -> str:
    """A one-line repr of at most 200 characters; never raises."""
    try:
        if _is_dataframe(value):
            rows, cols = value.shape  # type: ignore[attr-defined]
            names = ", ".join(map(str, list(value.columns[:10])))  # type: ignore[attr-defined]
            text = f"DataFrame {rows} rows x {cols} columns: {names}"
        else:
            text = _repr.repr(value)
    except Exception as exc:  # a broken __repr__ must not fail the task
        text = f"<{type_name(value)}: repr failed: {type(exc).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 3] + "..."


def metric_value(value: object) -> float | None:
    """The value as a metric: int/float/bool and numpy numeric scalars, finite only."""
    if isinstance(value, (bool, int, float)):
        number: Any = value
    elif type(value).__module__ == "numpy":
        import numpy as np

        if not isinstance(value, np.generic) or value.dtype.kind not in "biuf":
            return None
        number = value
    else:
        return None
    try:
        result = float(number)
    except (OverflowError, ValueError, TypeError):
        return None
    return result if math.isfinite(result) else None


def _describe(value: object) -> tuple[list[int] | None, dict[str, str] | None]:
    module = type(value).__module__
    if not (module.startswith("pandas") or module == "numpy"):
        return None, None
    shape = getattr(value, "shape", None)
    if not isinstance(shape, tuple) or not shape or not all(isinstance(n, int) for n in shape):
        return None, None
    schema = None
    if _is_dataframe(value):
        dtypes = value.dtypes  # type: ignore[attr-defined]
        schema = {str(col): str(dtype) for col, dtype in dtypes.items()}
    return [int(n) for n in shape], schema


def _is_dataframe(value: object) -> bool:
    if not type(value).__module__.startswith("pandas"):
        return False
    import pandas as pd

    return isinstance(value, pd.DataFrame)


def iterable_elements(value: object) -> list[Any] | None:
    """The elements a ``--foreach`` over ``value`` iterates, or None if it cannot."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        return None


# -- saving -------------------------------------------------------------------------


def save_artifact(store: ObjectStore, name: str, value: object) -> ArtifactRecord:
    """Store ``value``; never raises for a value that cannot be serialized."""
    shape, schema = _describe(value)
    record = ArtifactRecord(
        name=name,
        type=type_name(value),
        repr=short_repr(value),
        shape=shape,
        schema=schema,
        metric=metric_value(value),
    )
    try:
        if isinstance(value, io.IOBase):
            # cloudpickle would snapshot a read-mode file's whole content: not an artifact
            raise TypeError(f"cannot pickle open file object {short_repr(value)}")
        if not _save_with_serializer(store, record, value):
            record.format = "pickle"
            record.hash, record.size = store.put_stream(lambda f: _write_pickle(value, f))
    except Exception as exc:
        record.hash, record.size, record.format = None, 0, None
        record.reason = (f"{record.type} could not be stored: {type(exc).__name__}: {exc}"[:1500]
                         + f" — to store it, {serializers.register_hint(record.type)}")
        return record
    record.persisted = True
    return record


def _save_with_serializer(store: ObjectStore, record: ArtifactRecord, value: object) -> bool:
    """Store ``value`` with the serializer for its type; False if none takes it."""
    serializer = serializers.for_value(value)
    while serializer is not None:
        try:
            record.hash, record.size = store.put_stream(
                functools.partial(serializers.save_with, serializer, value))
        except serializers.Decline:
            serializer = _next_serializer(value, serializer)
            continue
        record.format = serializers.format_of(serializer)
        return True
    return False


def _next_serializer(value: object, declined: Any) -> Any:
    cls = type(value)
    candidates = [*serializers.registered(), *serializers.entry_point_serializers(),
                  *serializers.builtins()]
    after = candidates[candidates.index(declined) + 1:]
    return next((s for s in after if s.matches(cls)
                 and (s.accepts is None or s.accepts(value))), None)


def save_arrow_frame(df: Any, f: BinaryIO) -> None:
    """The built-in DataFrame serializer: Arrow IPC, when Arrow round-trips the frame."""
    table = _arrow_table_or_none(df)
    if table is None:
        raise serializers.Decline
    _write_ipc(table, f)


def load_arrow_frame(f: BinaryIO) -> Any:
    import pyarrow as pa

    return _to_pandas(pa.ipc.open_file(pa.BufferReader(f.read())).read_all())


def _write_pickle(value: object, f: BinaryIO) -> None:
    # Large buffers (numpy arrays, bytes) are streamed straight to ``f`` by the C
    # pickler, without an intermediate copy of the whole pickle. Sets are written
    # sorted, so the same value has the same content hash in every process.
    canonical.dump(value, f)


def _arrow_table_or_none(df: Any) -> Any:
    """The DataFrame as an Arrow table, or ``None`` if Arrow would not round-trip it."""
    import pyarrow as pa

    try:
        table = pa.Table.from_pandas(df, preserve_index=None)
    except Exception:  # mixed object columns, duplicate names, complex, sparse, ...
        return None
    object_fields = {c["field_name"] for c in _pandas_meta(table)["columns"]
                     if c.get("numpy_type") == "object"}
    for f in table.schema:
        if f.name in object_fields and not _object_safe(f.type):
            return None  # e.g. lists of Python lists would come back as numpy arrays
    return table


def _object_safe(arrow_type: Any) -> bool:
    import pyarrow.types as t

    return bool(
        t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_binary(arrow_type)
        or t.is_large_binary(arrow_type) or t.is_null(arrow_type) or t.is_decimal(arrow_type)
        or t.is_date(arrow_type) or t.is_boolean(arrow_type)
    )


def _write_ipc(table: Any, f: BinaryIO) -> None:
    import pyarrow as pa

    with pa.ipc.new_file(f, table.schema) as writer:
        writer.write_table(table)


def _pandas_meta(table: Any) -> dict[str, Any]:
    raw = (table.schema.metadata or {}).get(b"pandas")
    return json.loads(raw) if raw else {"columns": [], "index_columns": []}


# -- loading -----------------------------------------------------------------------


def load_artifact(store: ObjectStore, record: ArtifactRecord, *, step: str | None = None) -> Any:
    """The artifact's value. ``ArtifactUnavailable`` if it was not persisted."""
    _require_persisted(record, step)
    try:
        if record.format == "arrow":
            return _to_pandas(load_arrow_table(store, record, step=step))
        if record.format == "pickle":
            with store.open(record.hash) as f:  # type: ignore[arg-type]
                return canonical.load(f)
        if record.format and record.format.startswith(serializers.ENVELOPE_FORMAT_PREFIX):
            with store.open(record.hash) as f:  # type: ignore[arg-type]
                return serializers.load_envelope(f)
        serializer = serializers.by_name(record.format or "")
        if serializer is not None:
            return _load_with(store, serializer, record.hash)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(
            f"artifact {record.name!r} ({record.type}) could not be loaded: "
            f"{type(exc).__name__}: {exc}",
            step=step,
            hint="the loading environment may lack a package (or a version) the producer had",
            artifact=record.name,
        ) from exc
    raise StoreError(
        f"artifact {record.name!r} ({record.type}) was stored by serializer "
        f"{record.format!r}, which this process does not know", step=step,
        hint=f"install the package that provides it in the entry-point group "
        f"{serializers.ENTRY_POINT_GROUP!r}", artifact=record.name)


def _load_with(store: ObjectStore, serializer: Any, hash: Any) -> Any:
    path = store.local_path(hash) if serializer.load_path is not None else None
    if path is not None:
        return serializer.load_path(path)
    with store.open(hash) as f:
        return serializer.load(f)


def load_arrow_table(store: ObjectStore, record: ArtifactRecord, *, step: str | None = None) -> Any:
    """The artifact as a ``pyarrow.Table`` (memory-mapped when local), for DuckDB."""
    _require_persisted(record, step)
    if record.format != "arrow":
        raise StoreError(
            f"artifact {record.name!r} ({record.type}) is not stored in a columnar format",
            step=step,
            hint="only DataFrames that Arrow can represent are stored as Arrow; load it instead",
            artifact=record.name,
        )
    import pyarrow as pa

    hash = record.hash
    assert hash is not None
    path = store.local_path(hash)
    if path is not None:
        try:
            source: Any = pa.memory_map(path)
        except FileNotFoundError:
            store.open(hash).close()  # raises the StoreError naming the object
            raise
    else:
        source = pa.BufferReader(store.read_bytes(hash))
    return pa.ipc.open_file(source).read_all()


def _to_pandas(table: Any) -> Any:
    df = table.to_pandas()
    meta = _pandas_meta(table)
    object_fields = {c["field_name"] for c in meta["columns"] if c.get("numpy_type") == "object"}
    if not object_fields:
        return df
    # pandas 3 reads Arrow strings back as ``str``; the producer had ``object``.
    for i, name in enumerate(table.schema.names[: df.shape[1]]):
        if name in object_fields and str(df.dtypes.iloc[i]) != "object":
            df.isetitem(i, df.iloc[:, i].astype(object))
    index_fields = [c for c in meta["index_columns"] if isinstance(c, str)]
    if any(name in object_fields for name in index_fields) and df.index.nlevels == 1:
        if str(df.index.dtype) != "object":
            df.index = df.index.astype(object)
    return df


def _require_persisted(record: ArtifactRecord, step: str | None) -> None:
    if record.persisted and record.hash is not None:
        return
    raise ArtifactUnavailable(
        f"artifact {record.name!r} ({record.type}) was not persisted: {record.reason}",
        step=step,
        hint=serializers.register_hint(record.type),
        artifact=record.name,
        reason=record.reason,
    )
