"""Caching benchmark (issue: caching, resume and the reading side).

1. The classifier example run twice on a fresh home through the real CLI: the second,
   unchanged run's wall time as a ratio of the first (target <= 0.1), and proof from
   the catalog that it started no kernel.
2. ``Flow(...).latest_run.data`` for a run holding a 400 MB DataFrame and a small
   artifact, reading only the small one, against reading the large one (target: < 5%).

    python benchmarks/cache.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def nbflow_cmd() -> list[str]:
    """This interpreter's own console script (a version manager's shim on PATH would add
    its own start-up to every measurement)."""
    script = Path(sys.executable).parent / "nbflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nbflow"]


def timed_run(notebook: Path, home: Path, cwd: Path) -> float:
    env = {**os.environ, "NBFLOW_HOME": str(home)}
    t0 = time.perf_counter()
    done = subprocess.run([*nbflow_cmd(), "execute", str(notebook), "-q"], cwd=cwd, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"nbflow execute failed:\n{done.stderr}")
    return elapsed


def cache_ratio() -> None:
    from nbflow.store.catalog import Catalog

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        notebook = work / "classifier.ipynb"
        shutil.copy(ROOT / "example_notebooks" / "classifier.ipynb", notebook)
        home = work / ".nbflow"
        first = timed_run(notebook, home, work)
        second = timed_run(notebook, home, work)
        rows = Catalog(home / "catalog.duckdb").execute_read(
            "SELECT count(*), count(pid), count(kernel_mode), "
            "count(*) FILTER (WHERE status = 'cached') FROM tasks WHERE run_id = 2")
        tasks, pids, kernels, cached = rows[0]
    print("== unchanged re-run of example_notebooks/classifier.ipynb")
    print(f"first run          {first:7.2f} s")
    print(f"second run         {second:7.2f} s   ({cached}/{tasks} tasks cached, "
          f"{kernels} kernels started)")
    print(f"ratio second/first {second / first:7.3f}   (target <= 0.1)")
    if kernels or pids:
        print("!! the second run started a kernel")


def lazy_data(rows: int) -> None:
    from nbbuild import make_notebook

    from nbflow import Flow

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        notebook = make_notebook([
            "import numpy as np\nimport pandas as pd",
            (f"rows = {rows}", ["parameters"]),
            "%%step make\nbig = pd.DataFrame(np.random.default_rng(0).random((rows, 5)), "
            "columns=list('abcde'))\nsmall = {'rows': rows, 'note': 'tiny'}",
        ], work / "lazy.ipynb")
        home = work / ".nbflow"
        timed_run(notebook, home, work)
        os.environ["NBFLOW_HOME"] = str(home)
        record = Flow("lazy").latest_run["make"].task.artifacts["big"]  # type: ignore[index]
        big_file = home / "objects" / record.hash[:2] / record.hash[2:]  # type: ignore[index]
        samples_small, samples_hot, samples_cold = [], [], []
        for _ in range(3):
            t0 = time.perf_counter()
            value = Flow("lazy").latest_run.data.small  # type: ignore[union-attr]
            samples_small.append(time.perf_counter() - t0)
            assert value["rows"] == rows
            for samples in (samples_cold, samples_hot):
                if samples is samples_cold:
                    _evict(big_file)
                t0 = time.perf_counter()
                frame = Flow("lazy").latest_run.data.big  # type: ignore[union-attr]
                samples.append(time.perf_counter() - t0)
                assert len(frame) == rows
                del frame
        small, hot, cold = min(samples_small), min(samples_hot), min(samples_cold)
    size_mb = rows * 5 * 8 / 1e6
    print(f"== Flow('lazy').latest_run.data with a {size_mb:.0f} MB DataFrame artifact")
    print(f"read only the small artifact       {small * 1000:8.1f} ms")
    print(f"read the large one, from disk      {cold * 1000:8.1f} ms   "
          f"ratio small/large {small / cold:6.3f}   (target < 0.05)")
    print(f"read the large one, page-cached    {hot * 1000:8.1f} ms   "
          f"ratio small/large {small / hot:6.3f}")


def _evict(path: Path) -> None:
    """Drop one file's pages from the page cache (a first read in a new session)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    cache_ratio()
    lazy_data(args.rows)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
