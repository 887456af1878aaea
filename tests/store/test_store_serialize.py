"""Artifacts: DataFrames through Arrow IPC, everything else through cloudpickle."""

from __future__ import annotations

import decimal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbflow.errors import ArtifactUnavailable, StoreError
from nbflow.store.catalog import query_tables
from nbflow.store.objects import ObjectStore
from nbflow.store.serialize import (
    ArtifactRecord,
    load_arrow_table,
    load_artifact,
    metric_value,
    save_artifact,
)


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "objects"))


FRAMES: dict[str, pd.DataFrame] = {
    "numeric": pd.DataFrame({"a": [1.5, 2.5], "b": [1, 2], "c": np.array([1, 2], "uint8")}),
    "range_index_from_5": pd.DataFrame({"a": [1.0, 2.0]}, index=pd.RangeIndex(5, 7)),
    "named_string_index": pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="k")),
    "datetime_index": pd.DataFrame(
        {"a": [1, 2]}, index=pd.DatetimeIndex(["2024-01-01", "2024-03-01"], tz="UTC")
    ),
    "multi_index": pd.DataFrame(
        {"a": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["x", "y"])
    ),
    "int_column_names": pd.DataFrame(np.zeros((2, 2)), columns=[0, 1]),
    "nullable_and_categorical": pd.DataFrame({
        "i": pd.array([1, None], dtype="Int64"),
        "b": pd.array([True, None], dtype="boolean"),
        "c": pd.Categorical(["lo", "hi"], categories=["lo", "hi"], ordered=True),
        "s": ["x", None],
        "t": pd.to_datetime(["2020-01-01", "2021-06-01"]),
        "d": pd.to_timedelta([1, 2], unit="s"),
    }),
    "object_strings_and_decimals": pd.DataFrame({
        "s": pd.Series(["a", "b"], dtype=object),
        "d": pd.Series([decimal.Decimal("1.5"), None], dtype=object),
    }),
    "empty": pd.DataFrame({"a": pd.Series([], dtype="float64")}),
}


@pytest.mark.parametrize("name", list(FRAMES))
def test_dataframe_round_trips_through_arrow(name: str, store: ObjectStore) -> None:
    df = FRAMES[name]
    record = save_artifact(store, "df", df)
    assert record.persisted and record.format == "arrow", record.reason
    assert record.shape == list(df.shape)
    assert record.schema == {str(c): str(t) for c, t in df.dtypes.items()}
    back = load_artifact(store, record)
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    back.iloc[0:1, 0:1] = back.iloc[0:1, 0:1]  # writable, like the producer's frame


def test_dataframe_is_queryable_by_duckdb(store: ObjectStore) -> None:
    df = pd.DataFrame({"a": np.arange(1000, dtype="float64"), "g": ["x", "y"] * 500})
    record = save_artifact(store, "df", df)
    table = load_arrow_table(store, record)
    result = query_tables("SELECT g, avg(a) AS m FROM df GROUP BY g ORDER BY g", {"df": table})
    assert result["m"].tolist() == [499.0, 500.0]


@pytest.mark.parametrize(
    "df",
    [
        pd.DataFrame({"mixed": pd.Series([1, "x", 2.5], dtype=object)}),
        pd.DataFrame({"lists": pd.Series([[1], [2, 3]], dtype=object)}),
        pd.DataFrame([[1, 2]], columns=["a", "a"]),
        pd.DataFrame({"z": np.array([1j, 2], dtype=complex)}),
    ],
    ids=["mixed", "lists", "duplicate-columns", "complex"],
)
def test_dataframes_arrow_cannot_hold_fall_back_to_pickle(df: pd.DataFrame,
                                                            store: ObjectStore) -> None:
    record = save_artifact(store, "df", df)
    assert record.persisted and record.format == "pickle"
    pd.testing.assert_frame_equal(load_artifact(store, record), df)
    with pytest.raises(StoreError, match="columnar"):
        load_arrow_table(store, record)


def test_objects_round_trip_through_pickle(store: ObjectStore) -> None:
    def square(x: int) -> int:
        return x * x

    values: dict[str, Any] = {
        "dict": {"a": [1, 2.5, None], "b": ("x", b"y")},
        "series": pd.Series([1, 2], index=["a", "b"]),
        "closure": square,
    }
    for name, value in values.items():
        record = save_artifact(store, name, value)
        assert record.persisted and record.format == "pickle" and record.reason is None
        back = load_artifact(store, record)
        if name == "array":
            np.testing.assert_array_equal(back, value)
            assert record.shape == [100, 1000] and back.flags.writeable
        elif name == "series":
            pd.testing.assert_series_equal(back, value)
        elif name == "closure":
            assert back(7) == 49
        else:
            assert back == value


def test_same_value_same_hash(store: ObjectStore) -> None:
    a = save_artifact(store, "a", {"k": list(range(100))})
    b = save_artifact(store, "b", {"k": list(range(100))})
    assert a.hash == b.hash


def unserializable(name: str, tmp_path: Path) -> Any:
    lock = threading.Lock()
    makers = {
        "lambda_with_lock": lambda: lambda: lock.locked(),
        "generator": lambda: (i for i in range(3)),
        "open_file": lambda: open(tmp_path / "out.txt", "w"),  # noqa: SIM115
        "read_file": lambda: open(__file__),  # noqa: SIM115 (cloudpickle would copy its content)
    }
    return makers[name]()


@pytest.mark.parametrize("name", ["lambda_with_lock", "generator", "open_file", "read_file"])
def test_unserializable_is_recorded_not_raised(name: str, store: ObjectStore,
                                               tmp_path: Path) -> None:
    value = unserializable(name, tmp_path)
    record = save_artifact(store, name, value)
    assert not record.persisted and record.hash is None and record.format is None
    assert record.reason and ("pickle" in record.reason or "serializ" in record.reason)
    assert record.repr and len(record.repr) <= 200
    with pytest.raises(ArtifactUnavailable) as info:
        load_artifact(store, record, step="train")
    message = str(info.value)
    assert repr(name) in message and record.reason in message and "train" in message
    assert not [p for p in Path(store.root).rglob("*") if p.is_file()]  # no temp files left
    if hasattr(value, "close"):
        value.close()


@pytest.mark.parametrize(
    "value, metric",
    [
        (3, 3.0), (2.5, 2.5), (True, 1.0), (np.float32(0.5), 0.5), (np.int64(7), 7.0),
        (np.bool_(False), 0.0), (float("nan"), None), (float("inf"), None), (10**400, None),
        ("3", None), (np.array([1.0]), None), (np.float64("nan"), None), (1 + 2j, None),
        (None, None),
    ],
)
def test_metric_extraction(value: Any, metric: float | None, store: ObjectStore) -> None:
    assert metric_value(value) == metric
    assert save_artifact(store, "m", value).metric == metric


def test_record_json_round_trip(store: ObjectStore) -> None:
    record = save_artifact(store, "df", FRAMES["numeric"])
    assert ArtifactRecord.from_json(record.to_json()) == record
    assert record.type == "pandas.DataFrame" and record.size > 0
    assert record.repr.startswith("DataFrame 2 rows x 3 columns")


def test_long_and_broken_reprs(store: ObjectStore) -> None:
    class Broken:
        def __repr__(self) -> str:
            raise ValueError("no repr")

    assert len(save_artifact(store, "s", "x" * 10_000).repr) <= 200
    record = save_artifact(store, "b", Broken())
    assert "Broken" in record.repr and record.persisted


def test_plain_values_do_not_import_pandas_or_pyarrow(tmp_path: Path) -> None:
    code = (
        "import sys; from nbflow.store.objects import ObjectStore; "
        "from nbflow.store.serialize import save_artifact, load_artifact; "
        f"s = ObjectStore({str(tmp_path)!r}); "
        "r = save_artifact(s, 'x', {'a': [1, 2]}); assert load_artifact(s, r) == {'a': [1, 2]}; "
        "print(sorted({'pandas', 'pyarrow', 'duckdb', 'numpy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_numpy_arrays_are_npy_memory_mapped_copy_on_write(store: ObjectStore) -> None:
    value = np.arange(100_000, dtype="float32").reshape(100, 1000)
    record = save_artifact(store, "array", value)
    assert record.persisted and record.format == "npy" and record.shape == [100, 1000]
    back = load_artifact(store, record)
    assert type(back) is np.ndarray and isinstance(back.base, np.memmap)  # mapped, same type
    np.testing.assert_array_equal(back, value)
    back[0, 0] = -1  # copy-on-write: the stored object is untouched
    np.testing.assert_array_equal(load_artifact(store, record), value)
    expected = {"empty": "npy", "masked": "pickle", "objects": "pickle"}
    others = {"empty": np.zeros(0), "masked": np.ma.masked_array([1, 2], mask=[0, 1]),
              "objects": np.array([{}, 1], dtype=object)}
    for name, other in others.items():
        record = save_artifact(store, "x", other)
        assert record.format == expected[name], name
        np.testing.assert_array_equal(load_artifact(store, record), other)
