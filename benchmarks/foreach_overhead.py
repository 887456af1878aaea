"""The foreach-overhead benchmark: N trivial foreach tasks plus start/join, three ways.

Runs, one after the other in this process tree:

* **nbflow** — a generated notebook (setup, ``%%step start``, ``%%branch work
  --foreach items --as i``, ``%%step join``) through the real CLI,
  ``nbflow execute NB --max-workers W --max-num-splits N --home FRESH_HOME``.
  A fresh home per measurement means nothing is cached (no ``--no-cache``).
* **Metaflow** — the equivalent FlowSpec (start → foreach work → join → end) with
  its local runtime, ``python flow.py run --max-workers W``, from a virtual
  environment of its own (``~/.cache/nbflow-bench/metaflow-venv``, created with
  ``metaflow==2.19.*`` on first use and reused afterwards).
* **naive papermill** — ``papermill.execute_notebook`` of a tiny notebook per task,
  one fresh kernel each, W worker *processes* (``ProcessPoolExecutor``), the way a
  user would write it by hand: start, then the N work tasks, then join.

It prints wall seconds for each, the ratios nbflow/Metaflow and nbflow/papermill,
the load average before and after each measurement, and each CLI driver's own peak
RSS (the ``nbflow execute`` / ``flow.py run`` process, not its kernels or tasks).
Every measurement checks its result (exit code and the join's total). Nothing here
asserts on time: the numbers are for people to read.

    python benchmarks/foreach_overhead.py                      # width 100
    python benchmarks/foreach_overhead.py --width 1000         # --max-num-splits follows
    python benchmarks/foreach_overhead.py --skip metaflow --skip papermill
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import nbformat
import psutil

METAFLOW_REQUIREMENT = "metaflow==2.19.*"
METAFLOW_VENV = Path.home() / ".cache" / "nbflow-bench" / "metaflow-venv"
HOWS = ("floor", "nbflow", "metaflow", "papermill")
FLOW_NAME = "foreach_overhead"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


@dataclass
class Measurement:
    how: str
    label: str
    wall_s: float | None = None
    tasks: int = 0
    load_before: float = 0.0
    load_after: float = 0.0
    driver_peak_rss_mb: float | None = None
    note: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.wall_s is not None


@dataclass
class Options:
    width: int
    max_num_splits: int
    workers: int
    skip: frozenset[str] = field(default_factory=frozenset)
    keep: bool = False
    json_path: Path | None = None
    nbflow_cmd: tuple[str, ...] = ()
    repeat: int = 1
    widths: tuple[int, ...] = ()


def expected_total(width: int) -> int:
    return sum(i * 2 for i in range(width))


def load1() -> float:
    return os.getloadavg()[0]


# --------------------------------------------------------------------- driver RSS


class PeakRssSampler:
    """Samples one process's own peak RSS (not its children's) until it exits.

    On Linux ``VmHWM`` in ``/proc/PID/status`` is the kernel's high-water mark, so a
    sample taken shortly before exit already holds the true peak; elsewhere the
    maximum of sampled RSS values is the best available estimate.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._pid = pid
        self._interval = interval
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float | None:
        return self._peak / 2**20 if self._peak else None

    def _run(self) -> None:
        status = Path(f"/proc/{self._pid}/status")
        try:
            proc = psutil.Process(self._pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                self._peak = max(self._peak, _vm_hwm(status) or proc.memory_info().rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
                return
            self._stop.wait(self._interval)


def _vm_hwm(status: Path) -> int | None:
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def run_timed(
    cmd: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path
) -> tuple[float, int, float | None]:
    """Run ``cmd`` to completion; return (wall seconds, exit code, driver peak RSS MB)."""
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        with PeakRssSampler(proc.pid) as sampler:
            code = proc.wait()
        wall = time.perf_counter() - start
    return wall, code, sampler.peak_mb


def tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


# ------------------------------------------------------------------------ nbflow


def nbflow_notebook(width: int) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext nbflow"),
        nbformat.v4.new_code_cell(f"%%step start\nitems = list(range({width}))"),
        nbformat.v4.new_code_cell("%%branch work --foreach items --as i\nout = i * 2"),
        nbformat.v4.new_code_cell(
            '%%step join\ntotal = sum(t.out for t in work)\nprint(f"TOTAL {total}")'
        ),
    ]
    return nb


def bench_nbflow(opts: Options, workdir: Path) -> Measurement:
    m = Measurement("nbflow", "nbflow execute", tasks=opts.width + 2)
    if not opts.nbflow_cmd:
        m.error = "the `nbflow` CLI is not on PATH (pip install -e . first, or pass --nbflow-cmd)"
        return m
    nb_path = workdir / f"{FLOW_NAME}.ipynb"
    nbformat.write(nbflow_notebook(opts.width), nb_path)
    home = Path(tempfile.mkdtemp(prefix="home-", dir=workdir)) / ".nbflow"
    cmd = [*opts.nbflow_cmd, "execute", str(nb_path), "--max-workers", str(opts.workers),
           "--max-num-splits", str(opts.max_num_splits), "--home", str(home)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "NBFLOW_HOME"}
    log = workdir / "nbflow.log"
    m.load_before = load1()
    m.wall_s, code, m.driver_peak_rss_mb = run_timed(cmd, cwd=workdir, env=env, log=log)
    m.load_after = load1()
    if code != 0:
        m.error = f"nbflow execute exited {code}; last lines of {log}:\n{tail(log)}"
    elif not _nbflow_total_ok(home, opts.width, env):
        m.error = f"nbflow ran but the join's total {expected_total(opts.width)} was not found"
    return m


def _nbflow_total_ok(home: Path, width: int, env: dict[str, str]) -> bool:
    """Check the join's result: the run's executed notebook, else the client API."""
    wanted = f"TOTAL {expected_total(width)}"
    for executed in home.glob(f"runs/{FLOW_NAME}/*/notebook.ipynb"):
        if wanted in executed.read_text(errors="replace"):
            return True
    probe = (
        "from nbflow import Flow\n"
        f"print('TOTAL', Flow({FLOW_NAME!r}).latest_successful_run.data.total)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env={**env, "NBFLOW_HOME": str(home)},
        capture_output=True, text=True, cwd=home.parent,
    )  # fmt: skip
    return wanted in out.stdout


# ---------------------------------------------------------------------- Metaflow

METAFLOW_FLOW = """\
from metaflow import FlowSpec, Parameter, step


class ForeachOverheadFlow(FlowSpec):
    width = Parameter("width", default=100, type=int)

    @step
    def start(self):
        self.items = list(range(self.width))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.out = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(task.out for task in inputs)
        self.next(self.end)

    @step
    def end(self):
        print(f"TOTAL {self.total}")


if __name__ == "__main__":
    ForeachOverheadFlow()
"""


def metaflow_python() -> tuple[Path, str]:
    """The Metaflow venv's interpreter and Metaflow version, creating the venv if needed."""
    python = METAFLOW_VENV / "bin" / "python"
    probe = [str(python), "-c", "import metaflow; print(metaflow.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.returncode == 0:
            return python, found.stdout.strip()
    print(f"creating {METAFLOW_VENV} with {METAFLOW_REQUIREMENT} (first use only)…", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(METAFLOW_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", METAFLOW_REQUIREMENT], check=True)
    found = subprocess.run(probe, capture_output=True, text=True, check=True)
    return python, found.stdout.strip()


def bench_metaflow(opts: Options, workdir: Path) -> Measurement:
    m = Measurement("metaflow", "Metaflow local runtime", tasks=opts.width + 3)
    try:
        python, version = metaflow_python()
    except subprocess.CalledProcessError as exc:
        m.error = f"could not set up Metaflow's venv: {exc}"
        return m
    m.label = f"Metaflow {version} run"
    flow_dir = workdir / "metaflow"
    flow_dir.mkdir()
    (flow_dir / "flow.py").write_text(METAFLOW_FLOW)
    env = {
        **os.environ,
        "METAFLOW_HOME": str(flow_dir / "config"),
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(flow_dir / "datastore"),
        "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_DEFAULT_DATASTORE": "local",
        "USERNAME": os.environ.get("USERNAME", "nbflow-bench"),
    }
    cmd = [str(python), "flow.py", "--no-pylint", "run", "--max-workers", str(opts.workers),
           "--max-num-splits", str(opts.max_num_splits), "--width", str(opts.width)]  # fmt: skip
    log = workdir / "metaflow.log"
    m.load_before = load1()
    m.wall_s, code, m.driver_peak_rss_mb = run_timed(cmd, cwd=flow_dir, env=env, log=log)
    m.load_after = load1()
    if code != 0:
        m.error = f"metaflow run exited {code}; last lines of {log}:\n{tail(log)}"
    elif f"TOTAL {expected_total(opts.width)}" not in log.read_text(errors="replace"):
        m.error = f"metaflow ran but its end step did not print the expected total ({log})"
    m.note = "start, work×N, join, end (one more task than the others)"
    return m


# ------------------------------------------------------------- naive papermill


def _papermill_notebook(source: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    params = nbformat.v4.new_code_cell("data_dir = '.'\ni = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(source)]
    return nb


PAPERMILL_SOURCES = {
    "start": "import json, pathlib\n"
    "items = list(range({width}))\n"
    "pathlib.Path(data_dir, 'items.json').write_text(json.dumps(items))",
    "work": "import json, pathlib\n"
    "out = i * 2\n"
    "pathlib.Path(data_dir, f'work-{{i}}.json').write_text(json.dumps(out))",
    "join": "import json, pathlib\n"
    "items = json.loads(pathlib.Path(data_dir, 'items.json').read_text())\n"
    "total = sum(json.loads(pathlib.Path(data_dir, f'work-{{i}}.json').read_text()) for i in items)\n"
    "pathlib.Path(data_dir, 'total.json').write_text(json.dumps(total))",
}


def _quiet_worker(log: str) -> None:
    """Send a pool worker's stderr, and so its kernels' start-up warnings, to a log file."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 2)
    os.close(fd)


def _papermill_task(step: str, index: int, data_dir: str) -> int:
    """One task, in a pool worker: papermill with its defaults, a fresh kernel. Returns retries.

    Two processes starting kernels at once can pick the same TCP ports
    (``ZMQError: Address already in use``, jupyter_client#487); a hand-written
    script that hits it would simply run the task again, so this retries once.
    """
    import papermill

    src = Path(data_dir, f"{step}.ipynb")
    out = Path(data_dir, "out", f"{step}-{index}.ipynb")
    params = {"data_dir": data_dir, "i": index}
    try:
        papermill.execute_notebook(src, out, parameters=params, progress_bar=False)
        return 0
    except Exception:  # any start-up race; a second failure propagates
        papermill.execute_notebook(src, out, parameters=params, progress_bar=False)
        return 1


def bench_papermill(opts: Options, workdir: Path) -> Measurement:
    m = Measurement("papermill", f"papermill, {opts.workers} processes", tasks=opts.width + 2)
    data_dir = workdir / "papermill"
    (data_dir / "out").mkdir(parents=True)
    for step, source in PAPERMILL_SOURCES.items():
        nbformat.write(
            _papermill_notebook(source.format(width=opts.width)), data_dir / f"{step}.ipynb"
        )
    m.load_before = load1()
    start = time.perf_counter()
    retries = 0
    log = str(workdir / "papermill.log")
    with ProcessPoolExecutor(opts.workers, initializer=_quiet_worker, initargs=(log,)) as pool:
        retries += pool.submit(_papermill_task, "start", 0, str(data_dir)).result()
        work = [pool.submit(_papermill_task, "work", i, str(data_dir)) for i in range(opts.width)]
        retries += sum(f.result() for f in work)
        retries += pool.submit(_papermill_task, "join", 0, str(data_dir)).result()
    m.wall_s = time.perf_counter() - start
    m.load_after = load1()
    total = json.loads((data_dir / "total.json").read_text())
    if total != expected_total(opts.width):
        m.error = f"papermill join computed {total}, expected {expected_total(opts.width)}"
    m.note = "ProcessPoolExecutor; papermill imported once per worker"
    if retries:
        m.note += f"; {retries} task(s) retried after a kernel start-up error"
    return m


# ------------------------------------------------------------------------- floor

FLOOR_SCRIPT = """\
import os, pickle, sys, time
import ipykernel.kernelapp, pandas  # a warm process: what a kernel would have imported
width, workers, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
running = 0
for i in range(width):
    if running == workers:
        os.wait()
        running -= 1
    if os.fork() == 0:
        result = i * 2  # the task's trivial body
        with open(os.path.join(out, f"{i}.pkl"), "wb") as f:
            pickle.dump(result, f)
        os._exit(0)
    running += 1
while running:
    os.wait()
    running -= 1
print(time.perf_counter() - start)
"""


def bench_floor(opts: Options, workdir: Path) -> Measurement:
    """The physical floor: a warm process forks one child per task, ``workers`` at a time;
    each runs the trivial body and pickles its result to a file."""
    m = Measurement("floor", "floor (warm fork per task)", tasks=opts.width)
    out = workdir / "floor"
    out.mkdir()
    m.load_before = load1()
    done = subprocess.run(
        [sys.executable, "-c", FLOOR_SCRIPT, str(opts.width), str(opts.workers), str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    m.load_after = load1()
    if done.returncode != 0:
        m.error = f"the floor script failed: {done.stderr[-2000:]}"
        return m
    m.wall_s = float(done.stdout.strip())
    if len(list(out.iterdir())) != opts.width:
        m.error = "the floor script did not write one result per task"
    m.note = "fork + trivial body + pickle to a file, imports (ipykernel, pandas) excluded"
    return m


# ------------------------------------------------------------------------ report


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def report(
    opts: Options,
    results: list[Measurement],
    load_start: tuple[float, float, float],
    load_end: tuple[float, float, float],
) -> None:
    print()
    print(
        f"foreach overhead: width {opts.width} (+ start/join), --max-workers {opts.workers}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    header = f"{'how':<28} {'wall s':>8} {'per task s':>11} {'tasks':>6} {'driver RSS MB':>14} {'load 1m before→after':>22}"
    print(header)
    print("-" * len(header))
    for m in results:
        per_task = m.wall_s / m.tasks if m.ok and m.wall_s is not None else None
        wall = fmt(m.wall_s, ".2f") if m.ok else "FAILED" if m.wall_s is not None else "skipped"
        load = f"{m.load_before:.2f} → {m.load_after:.2f}" if m.wall_s is not None else ""
        print(
            f"{m.label:<28} {wall:>8} {fmt(per_task, '.3f'):>11} {m.tasks:>6} "
            f"{fmt(m.driver_peak_rss_mb, '.0f'):>14} {load:>22}"
        )
    print()
    walls = {m.how: m.wall_s for m in results if m.ok and m.wall_s}
    per_task = {m.how: m.wall_s / m.tasks for m in results if m.ok and m.wall_s}
    if "nbflow" in per_task and "floor" in per_task:
        print(f"nbflow per task / floor per task: {per_task['nbflow'] / per_task['floor']:.1f}×")
    for other in ("metaflow", "papermill"):
        if "nbflow" in walls and other in walls:
            ratio = walls["nbflow"] / walls[other]
            print(f"nbflow / {other:<9}: {ratio:.2f}×  (< 1 means nbflow is faster)")
    loads = [" / ".join(f"{x:.2f}" for x in load) for load in (load_start, load_end)]
    print(f"machine load (1/5/15 min): at start {loads[0]}, at end {loads[1]}")
    for m in results:
        if m.note:
            print(f"note, {m.how}: {m.note}")
        if m.error:
            print(f"\n{m.how}: {m.error}")


def _nbflow_cmd(given: str | None) -> tuple[str, ...]:
    if given:
        return tuple(shlex.split(given))
    own = Path(sys.executable).parent / "nbflow"  # not a version manager's shim on PATH
    if own.exists():
        return (str(own),)
    exe = shutil.which("nbflow")
    return (exe,) if exe else ()


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--width", type=int, action="append",
        help="foreach width (default 100); repeat it (--width 10 --width 100) to compare "
             "the per-task cost across widths",
    )
    parser.add_argument(
        "--max-num-splits",
        type=int,
        default=None,
        help="passed to nbflow and Metaflow (default: the larger of --width and 100)",
    )
    parser.add_argument("--workers", type=int, default=2, help="concurrent tasks (default 2)")
    parser.add_argument(
        "--skip", action="append", choices=HOWS, default=[], help="leave one out (repeatable)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="runs of each tool, interleaved so load drift hits all alike; the median is "
             "reported (default 1)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with logs")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--nbflow-cmd",
        help="how to invoke nbflow's CLI (default: `nbflow` on PATH), e.g. 'python -m nbflow'",
    )
    args = parser.parse_args(argv)
    opts = Options(
        width=(args.width or [100])[0],
        widths=tuple(args.width or [100]),
        max_num_splits=args.max_num_splits or max([*(args.width or []), 100]),
        workers=args.workers,
        skip=frozenset(args.skip),
        keep=args.keep,
        json_path=args.json,
        nbflow_cmd=_nbflow_cmd(args.nbflow_cmd),
        repeat=max(1, args.repeat),
    )
    return opts


def _median(measurements: list[Measurement]) -> Measurement:
    """The run with the median wall time (a failed run wins: it must be seen)."""
    failed = [m for m in measurements if not m.ok]
    if failed:
        return failed[0]
    ordered = sorted(measurements, key=lambda m: m.wall_s or 0.0)
    chosen = ordered[len(ordered) // 2]
    if len(ordered) > 1:
        walls = ", ".join(f"{m.wall_s:.2f}" for m in measurements)
        chosen.note = (chosen.note + "; " if chosen.note else "") + f"median of {walls} s"
    return chosen


BENCHES = {"floor": bench_floor, "nbflow": bench_nbflow, "metaflow": bench_metaflow,
           "papermill": bench_papermill}


def run_width(opts: Options) -> tuple[list[Measurement], bool]:
    """Every tool at one width, repeats interleaved; the medians, reported."""
    workdir = Path(tempfile.mkdtemp(prefix="nbflow-foreach-bench-"))
    load_start = os.getloadavg()
    runs: dict[str, list[Measurement]] = {}
    try:
        for rep in range(opts.repeat):
            for how, bench in BENCHES.items():
                if how in opts.skip:
                    continue
                print(f"running {how} (width {opts.width}, run {rep + 1}/{opts.repeat})…",
                      flush=True)
                place = workdir / f"{how}-{rep}"  # a fresh home each time: nothing cached
                place.mkdir()
                try:
                    runs.setdefault(how, []).append(bench(opts, place))
                except Exception as exc:  # report it with the others rather than lose them
                    runs.setdefault(how, []).append(
                        Measurement(how, how, error=f"{type(exc).__name__}: {exc}"))
    finally:
        results = [_median(ms) for ms in runs.values()]
        ok = all(m.ok for m in results)
        if opts.keep or not ok:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(opts, results, load_start, os.getloadavg())
    return results, ok


def report_widths(by_width: dict[int, list[Measurement]]) -> None:
    """Per-task cost of each tool by width: flat means O(1) work per task."""
    hows = [how for how in HOWS if any(m.how == how for ms in by_width.values() for m in ms)]
    print("\nper-task seconds by width (wall / tasks; load 1m before the run in brackets)")
    print(f"{'width':>6} " + " ".join(f"{how:>20}" for how in hows))
    for width, results in by_width.items():
        cells = []
        for how in hows:
            m = next((m for m in results if m.how == how), None)
            cells.append(f"{m.wall_s / m.tasks:.4f} [{m.load_before:.1f}]"
                         if m is not None and m.ok and m.wall_s else "—")
        print(f"{width:>6} " + " ".join(f"{cell:>20}" for cell in cells))


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    by_width: dict[int, list[Measurement]] = {}
    all_ok = True
    for width in opts.widths:
        splits = opts.max_num_splits if opts.max_num_splits >= width else max(width, 100)
        results, ok = run_width(replace(opts, width=width, max_num_splits=splits))
        by_width[width] = results
        all_ok = all_ok and ok
    if len(by_width) > 1:
        report_widths(by_width)
    if opts.json_path is not None:
        payload = {
            "options": {**asdict(opts), "skip": sorted(opts.skip), "json_path": None},
            "cpus": os.cpu_count(),
            "results": {str(w): [asdict(m) for m in ms] for w, ms in by_width.items()},
        }
        opts.json_path.write_text(json.dumps(payload, indent=2))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
