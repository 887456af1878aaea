"""The dask-backend benchmark, in one run:

* **foreach** — the 100-wide foreach notebook (start → 100 trivial tasks → join) through the
  real CLI, ``--backend local --max-workers 2`` vs ``--backend dask`` on a real
  ``dask scheduler`` process with 2 single-threaded workers (``dask worker --nworkers 2
  --nthreads 1``). Both use a fresh local home, so only the backend differs. Target:
  dask/local ≤ 1.5.
* **artifact** — a 400 MB DataFrame (1e7 × 5 float64) stored as an nbflow artifact in an
  S3 home on moto's server (``moto_server`` in its own process) and loaded back, vs a
  plain s3fs ``pipe``/``cat`` of the same bytes. Target: nbflow ≥ 70% of plain s3fs
  both ways.

Prints wall seconds, the ratios and the load average; asserts nothing about time.

    python benchmarks/dask_overhead.py
    python benchmarks/dask_overhead.py --width 20 --rows 1000000     # a quick look
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "nbflow-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def foreach_notebook(path: Path, width: int) -> None:
    v4 = nbformat.v4
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [
        v4.new_code_cell("%load_ext nbflow"),
        v4.new_code_cell(f"width = {width}", metadata={"tags": ["parameters"]}),
        v4.new_code_cell("%%step start\nitems = list(range(width))"),
        v4.new_code_cell("%%branch work --foreach items --as i\nsquare = i * i"),
        v4.new_code_cell("%%step join\ntotal = sum(t.square for t in work)"),
    ]
    nbformat.write(nb, path)


def env_with(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def timed_execute(nb: Path, home: Path, width: int, backend: list[str]) -> float:
    command = [sys.executable, "-m", "nbflow", "execute", str(nb), "--home", str(home),
               "--max-num-splits", str(width), "-q", *backend]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env_with({}),
                          cwd=nb.parent)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(backend)} failed:\n{done.stderr}")
    return wall


def start_cluster(workdir: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(workdir / "cluster.log", "wb")
    procs = [
        subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                          "127.0.0.1", "--port", str(port), "--no-dashboard"],
                         cwd=workdir, env=env_with({}), stdout=log, stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                          "--nworkers", "2", "--nthreads", "1", "--host", "127.0.0.1",
                          "--no-dashboard"], cwd=workdir, env=env_with({}), stdout=log,
                         stderr=subprocess.STDOUT),
    ]
    from distributed import Client

    deadline = time.time() + 120
    while True:
        try:
            with Client(address, timeout=10) as client:
                client.wait_for_workers(2, timeout=120)
                break
        except OSError:
            if time.time() > deadline:
                raise
    return address, procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def bench_foreach(workdir: Path, width: int, repeat: int) -> tuple[float, float]:
    """``repeat`` interleaved pairs (local, then dask on a freshly started cluster: its
    start is not timed, its workers' fork servers start cold as the driver's does);
    the medians."""
    import statistics

    nb = workdir / "wide.ipynb"
    foreach_notebook(nb, width)
    locals_, dasks = [], []
    for attempt in range(repeat):
        print(f"foreach {width} #{attempt + 1}: load before {load()}", flush=True)
        locals_.append(timed_execute(nb, workdir / f"home-local-{attempt}", width,
                                     ["--backend", "local", "--max-workers", "2"]))
        address, procs = start_cluster(workdir)
        try:
            dasks.append(timed_execute(nb, workdir / f"home-dask-{attempt}", width,
                                       ["--backend", "dask", "--scheduler", address]))
        finally:
            stop(procs)
        print(f"  local --max-workers 2: {locals_[-1]:6.2f} s   dask 2 workers x 1 thread: "
              f"{dasks[-1]:6.2f} s   ratio {dasks[-1] / locals_[-1]:.2f}  (load {load()})",
              flush=True)
    local, dask = statistics.median(locals_), statistics.median(dasks)
    print(f"  medians: local {local:.2f} s, dask {dask:.2f} s; dask/local = {dask / local:.2f}"
          f"  (target <= 1.5; load {load()})", flush=True)
    return local, dask


def bench_artifact(workdir: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd
    import s3fs

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                       "FSSPEC_S3_ENDPOINT_URL": endpoint})
    import fsspec.config

    fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = endpoint
    server = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        fs = s3fs.S3FileSystem(endpoint_url=endpoint)
        for _ in range(100):
            try:
                fs.mkdir(BUCKET)
                break
            except Exception:
                time.sleep(0.1)
        from nbflow.store.home import Home
        from nbflow.store.serialize import load_artifact, save_artifact

        df = pd.DataFrame(np.random.default_rng(0).random((rows, 5)), columns=list("abcde"))
        store = Home(f"s3://{BUCKET}/nbflow0").objects
        print(f"artifact {df.memory_usage().sum() / 1e6:.0f} MB: load {load()}", flush=True)
        # Best of two, alternating nbflow and plain, so neither gets the warm server alone.
        write_nbflow = write_plain = read_nbflow = read_plain = float("inf")
        for attempt in range(2):
            started = time.perf_counter()
            record = save_artifact(Home(f"s3://{BUCKET}/nbflow{attempt}").objects, "df", df)
            write_nbflow = min(write_nbflow, time.perf_counter() - started)
            if attempt == 0:
                data = store.read_bytes(record.hash or "")
            started = time.perf_counter()
            fs.pipe_file(f"{BUCKET}/plain/object{attempt}", data)
            write_plain = min(write_plain, time.perf_counter() - started)
            started = time.perf_counter()
            back = load_artifact(store, record)
            read_nbflow = min(read_nbflow, time.perf_counter() - started)
            assert back.shape == df.shape
            del back
            started = time.perf_counter()
            again = fs.cat_file(f"{BUCKET}/plain/object{attempt}")
            read_plain = min(read_plain, time.perf_counter() - started)
            assert len(again) == record.size
            del again
        mb = len(data) / 1e6
        for what, ours, plain in (("write", write_nbflow, write_plain),
                                  ("read", read_nbflow, read_plain)):
            print(f"  {what:5}: nbflow {ours:6.2f} s ({mb / ours:6.1f} MB/s)   plain s3fs "
                  f"{plain:6.2f} s ({mb / plain:6.1f} MB/s)   nbflow/plain throughput "
                  f"{plain / ours:5.0%}  (target >= 70%)", flush=True)
        print(f"  load after {load()}", flush=True)
    finally:
        server.terminate()
        server.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved foreach pairs")
    parser.add_argument("--skip", choices=("foreach", "artifact"), action="append", default=[])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="nbflow-dask-bench-") as tmp:
        workdir = Path(tmp)
        if "foreach" not in args.skip:
            bench_foreach(workdir, args.width, args.repeat)
        if "artifact" not in args.skip:
            bench_artifact(workdir, args.rows)


if __name__ == "__main__":
    main()
