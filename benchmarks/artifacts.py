"""The artifact benchmark: a 1e7 x 5 float64 DataFrame (400 MB) through the real store.

For the format nbflow uses (Arrow IPC, uncompressed) and the alternative it was
chosen against (Parquet: no compression, no dictionary, no statistics), it

* persists the frame with ``save_artifact`` into a fresh local home, fsync on
  (the store's default: the object is durable before it gets its name);
* reloads it with ``load_artifact`` warm (from the page cache, as right after a
  task wrote it) and cold (the object's pages evicted with ``posix_fadvise``
  ``DONTNEED``, so it comes from the disk; only that file, not the machine's cache);
* measures the disk in the same run, interleaved with the artifact writes:
  ``dd if=/dev/zero of=… bs=1M count=400 conv=fdatasync``;
* prints MB/s (MB = 10^6 bytes of frame data) as medians over ``--repeat`` runs and
  as ratios to the disk's write speed, plus DuckDB querying the stored artifact and
  the load average before and after.

The Parquet path writes through the same ``ObjectStore.put_stream`` (hashing, temp
file, fsync, rename), so the comparison isolates the format.

    python benchmarks/artifacts.py [--rows 10000000] [--repeat 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nbflow.store.catalog import query_tables
from nbflow.store.home import Home
from nbflow.store.objects import ObjectStore
from nbflow.store.serialize import ArtifactRecord, load_arrow_table, load_artifact, save_artifact

DD_MB = 400


def disk_write_mb_s(directory: str) -> float:
    target = os.path.join(directory, "dd.bin")
    done = subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={DD_MB}", "conv=fdatasync"],
        capture_output=True, text=True, check=True,
    )
    os.unlink(target)
    match = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", done.stderr)
    assert match, done.stderr
    return int(match.group(1)) / float(match.group(2)) / 1e6


def evict(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def parquet_save(store: ObjectStore, df: pd.DataFrame) -> ArtifactRecord:
    def write(f: Any) -> None:
        table = pa.Table.from_pandas(df, preserve_index=None)
        pq.write_table(table, f, compression="none", use_dictionary=False, write_statistics=False)

    hash, size = store.put_stream(write)
    return ArtifactRecord("df", "DataFrame", hash, size, None, persisted=True)


def parquet_load(store: ObjectStore, record: ArtifactRecord) -> pd.DataFrame:
    assert record.hash is not None
    path = store.local_path(record.hash)
    return pq.read_table(path, memory_map=True).to_pandas()


def measure(label: str, home: Home, df: pd.DataFrame, save: Callable[[], ArtifactRecord],
            load: Callable[[ArtifactRecord], pd.DataFrame], repeat: int,
            disk: list[float]) -> dict[str, float]:
    nbytes = float(df.memory_usage(index=False).sum())
    writes, warm, cold = [], [], []
    for _ in range(repeat):
        shutil.rmtree(home.objects.root, ignore_errors=True)
        disk.append(disk_write_mb_s(home.url))
        seconds, record = timed(save)
        writes.append(nbytes / seconds / 1e6)
        seconds, back = timed(lambda: load(record))  # noqa: B023
        warm.append(nbytes / seconds / 1e6)
        assert back.shape == df.shape and float(back["a"].iloc[-1]) == float(df["a"].iloc[-1])
        del back
        assert record.hash is not None
        evict(home.objects.path(record.hash))
        seconds, back = timed(lambda: load(record))  # noqa: B023
        cold.append(nbytes / seconds / 1e6)
        del back
    size = record.size / 1e6
    result = {"write": statistics.median(writes), "warm": statistics.median(warm),
              "cold": statistics.median(cold)}
    print(f"{label:<34} {size:7.0f} MB  write {result['write']:6.0f} MB/s  "
          f"read warm {result['warm']:6.0f} MB/s  read cold {result['cold']:6.0f} MB/s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to put the temporary home")
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()}")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.random((args.rows, 5)), columns=list("abcde"))
    workdir = tempfile.mkdtemp(prefix="nbflow-bench-artifacts-", dir=args.dir)
    try:
        home = Home(workdir)  # fsync on: the store's default
        store = home.objects
        disk: list[float] = []
        chosen = measure(
            "arrow ipc (nbflow's format)", home, df,
            lambda: save_artifact(store, "df", df), lambda r: load_artifact(store, r),
            args.repeat, disk,
        )
        other = measure(
            "parquet (none/no dict/no stats)", home, df,
            lambda: parquet_save(store, df), lambda r: parquet_load(store, r),
            args.repeat, disk,
        )
        disk_speed = statistics.median(disk)
        print(f"{'disk: dd bs=1M conv=fdatasync':<34} {DD_MB * 1.048576:7.0f} MB  write "
              f"{disk_speed:6.0f} MB/s  (median of {len(disk)}: "
              f"{', '.join(f'{d:.0f}' for d in disk)})")
        for label, r in (("arrow ipc", chosen), ("parquet", other)):
            print(f"ratio to disk write, {label:<10} write {r['write'] / disk_speed:5.2f}  "
                  f"read warm {r['warm'] / disk_speed:5.2f}  read cold {r['cold'] / disk_speed:5.2f}")

        record = save_artifact(store, "df", df)
        seconds, table = timed(lambda: load_arrow_table(store, record))
        query_seconds, result = timed(
            lambda: query_tables("SELECT avg(a) AS avg_a, count(*) AS n FROM df", {"df": table})
        )
        print(f"duckdb over the stored artifact: SELECT avg(a), count(*) FROM df -> "
              f"avg_a={result['avg_a'][0]:.6f} n={result['n'][0]} "
              f"(numpy: {df['a'].mean():.6f}); map {seconds * 1e3:.1f} ms, "
              f"query {query_seconds * 1e3:.1f} ms")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
