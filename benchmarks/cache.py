"""Caching benchmark (issue: caching, resume and the reading side).

1. The classifier example run twice on a fresh home through the real CLI: the second,
   unchanged run's wall time as a ratio of the first (target <= 0.05), and proof from
   the catalog that it started no kernel. ``--repeat N`` fresh homes, medians; next to
   it, measured in the same rounds, the floor a cached run cannot go below: the
   interpreter's start-up (``python -c pass``) and that plus importing DuckDB's engine
   (what the catalog imports) and connecting. By default nbflow's modules are byte-compiled first, as
   ``pip install`` does (this machine sets PYTHONDONTWRITEBYTECODE, so an editable
   checkout would compile every module in every process); ``--no-compile`` measures
   without.
2. ``Flow(...).latest_run.data`` for a run holding a 400 MB DataFrame and a small
   artifact, reading only the small one, against reading the large one (target: < 5%).

    python benchmarks/cache.py [--rows 10000000] [--repeat 3] [--no-compile] [--no-lazy]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
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


def timed_run(notebook: Path, home: Path, cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one ``nbflow execute`` (CPU: user + system of the child)."""
    env = {**os.environ, "NBFLOW_HOME": str(home)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([*nbflow_cmd(), "execute", str(notebook), "-q"], cwd=cwd, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"nbflow execute failed:\n{done.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# What the catalog loads: DuckDB's engine module (duckdb 2), else the package; one connection.
ENGINE = ("try:\n    import _duckdb as duckdb\nexcept ImportError:\n    import duckdb\n"
          "duckdb.connect(':memory:')")


def timed_python(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def cache_ratio(repeat: int) -> None:
    from nbflow.store.catalog import Catalog

    firsts, seconds, cpus, ratios, passes, duckdbs, loads = [], [], [], [], [], [], []
    for _ in range(repeat):
        loads.append(os.getloadavg()[0])
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            notebook = work / "classifier.ipynb"
            shutil.copy(ROOT / "example_notebooks" / "classifier.ipynb", notebook)
            home = work / ".nbflow"
            first, _ = timed_run(notebook, home, work)
            second, cpu = timed_run(notebook, home, work)
            passes.append(timed_python("pass"))
            duckdbs.append(timed_python(ENGINE))
            rows = Catalog(home / "catalog.duckdb").execute_read(
                "SELECT count(*), count(pid), count(kernel_mode), "
                "count(*) FILTER (WHERE status = 'cached') FROM tasks WHERE run_id = 2")
            tasks, pids, kernels, cached = rows[0]
        firsts.append(first)
        seconds.append(second)
        cpus.append(cpu)
        ratios.append(second / first)
        print(f"  round: first {first:6.2f} s, second {second:5.3f} s (cpu {cpu:5.3f} s), "
              f"ratio {second / first:6.3f}, load {loads[-1]:.2f}", flush=True)
        if kernels or pids:
            print("!! the second run started a kernel")
    loads.append(os.getloadavg()[0])
    first, second, cpu = (statistics.median(x) for x in (firsts, seconds, cpus))
    floor_pass, floor_duckdb = statistics.median(passes), statistics.median(duckdbs)
    print(f"== unchanged re-run of example_notebooks/classifier.ipynb (medians of {repeat})")
    print(f"first run          {first:7.2f} s")
    print(f"second run         {second:7.3f} s   ({cached}/{tasks} tasks cached, "
          f"{kernels} kernels started; cpu {cpu:.3f} s)")
    print(f"ratio second/first {statistics.median(ratios):7.3f}   (median of the rounds' "
          f"ratios; target <= 0.05)")
    print(f"floor: python -c pass {floor_pass:.3f} s, + import DuckDB's engine and connect "
          f"{floor_duckdb:.3f} s; the second run is {second - floor_duckdb:.3f} s above it")
    print(f"load 1m during: {min(loads):.2f}-{max(loads):.2f}")


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
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true",
                        help="do not byte-compile nbflow's modules first")
    parser.add_argument("--no-lazy", action="store_true",
                        help="skip the lazy-data part (the 400 MB DataFrame)")
    args = parser.parse_args()
    import nbflow

    package = Path(nbflow.__file__).parent
    if not args.no_compile:
        compileall.compile_dir(str(package), quiet=1)
    print(f"nbflow from {package} ({'no bytecode' if args.no_compile else 'byte-compiled'}); "
          f"load average before: {os.getloadavg()}")
    cache_ratio(args.repeat)
    if not args.no_lazy:
        lazy_data(args.rows)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
