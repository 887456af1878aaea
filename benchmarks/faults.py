"""Reliability under faults, through the real CLI: what survives a kill, a signal, a broken
catalog and concurrent writers.

Scenarios (``--trials N`` each, default 2):

* ``kill-driver``  SIGKILL of ``nbflow execute`` at a random moment, then ``--resume``;
* ``kill-kernel``  SIGKILL of a running task's kernel (the run fails that task), then
  ``--resume``;
* ``sigterm``      SIGTERM of the driver at a random moment (expects exit 143 and a
  ``cancelled`` run), then ``--resume``;
* ``corrupt``      blocks of the catalog overwritten, ``nbflow catalog rebuild``, rows
  compared with a copy taken before;
* ``concurrent``   4 runs at once on one home and a reader polling every 0.5 s.

For each it prints: runs left consistent (``nbflow catalog check`` passes and no run is
left ``running``), tasks lost (a task whose manifest is on disk but whose catalog row
does not say it succeeded), rows lost (rows that differ from the journals or from the
copy before the damage), orphan processes (children of the driver alive 15 s after it
ended), and resumes that completed. Target: 0 lost, 0 orphans, every resume completes.

    python benchmarks/faults.py [--trials 2] [--dir DIR] [--only sigterm ...]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
TABLES = ["runs", "params", "tags", "steps", "tasks", "artifacts"]


@dataclass
class Tally:
    trials: int = 0
    consistent: int = 0
    tasks_lost: int = 0
    rows_lost: int = 0
    orphans: int = 0
    resumes: int = 0
    resumed: int = 0
    notes: list[str] = field(default_factory=list)


def nbflow(*args: str, home: Path, cwd: Path, **popen: object) -> subprocess.Popen[str]:
    env = {**os.environ, "NBFLOW_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "nbflow", *args], cwd=cwd, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **popen)  # type: ignore[call-overload]


def run(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = nbflow(*args, home=home, cwd=cwd)
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def write_notebook(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from nbbuild import make_notebook

    return make_notebook([
        "import time",
        ("n = 4\nnap = 1.0\nseed = 0", ["parameters"]),
        "%%step load\nitems = list(range(n))",
        "%%branch work --foreach items --as i\ntime.sleep(nap)\nsquare = i * i + seed",
        "%%step join\ntotal = sum(t.square for t in work)",
    ], folder / "faults.ipynb")


def query(home: Path, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    from nbflow.store.catalog import Catalog
    from nbflow.store.home import Home

    where = Home(str(home))
    return Catalog(where.catalog_path, where).execute_read(sql, params or [])


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def orphans_left(processes: list[psutil.Process]) -> int:
    deadline = time.monotonic() + 15
    alive = processes
    while alive and time.monotonic() < deadline:
        time.sleep(0.5)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for process in alive:  # do not leave them to the next trial
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    return len(alive)


def tasks_lost(home: Path) -> int:
    """Tasks whose manifest is on disk but whose catalog row does not say it finished."""
    finished = {(f, r, s, i) for f, r, s, i in query(
        home, "SELECT flow, run_id, step, task_index FROM tasks "
              "WHERE status IN ('succeeded', 'cached', 'cloned')")}
    lost = 0
    for manifest in (home / "runs").glob("*/*/*/*/manifest.json"):
        flow, run_id, step, index = manifest.parts[-5:-1]
        if (flow, int(run_id), step, int(index)) not in finished:
            lost += 1
    return lost


def check(home: Path, folder: Path, tally: Tally) -> None:
    done = run("catalog", "check", home=home, cwd=folder)
    running = query(home, "SELECT count(*) FROM runs WHERE status = 'running'")[0][0]
    if done.returncode == 0 and running == 0:
        tally.consistent += 1
    else:
        tally.notes.append(f"check exit {done.returncode}, {running} running: "
                           f"{done.stdout.strip()[:200]}")
        tally.rows_lost += sum(int(line.split()[1]) + int(line.split()[7])
                               for line in done.stdout.splitlines() if "row(s) only" in line)
    tally.tasks_lost += tasks_lost(home)


def resume(home: Path, folder: Path, tally: Tally) -> None:
    tally.resumes += 1
    done = run("execute", "faults.ipynb", "--resume", home=home, cwd=folder)
    if done.returncode == 0:
        tally.resumed += 1
    else:
        tally.notes.append(f"resume exit {done.returncode}: {done.stderr.strip()[-300:]}")


def wait_for_task(home: Path, proc: subprocess.Popen[str]) -> int | None:
    """The pid of a running work task of the newest run."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if (home / "catalog.duckdb").exists():
            rows = query(home, "SELECT pid FROM tasks WHERE status = 'running' AND "
                               "step = 'work' AND run_id = (SELECT max(run_id) FROM runs)")
            if rows and rows[0][0]:
                return int(rows[0][0])
    return None


def fresh(base: Path, name: str) -> tuple[Path, Path]:
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
    write_notebook(folder)
    return folder, folder / ".nbflow"


def signal_driver(base: Path, trials: int, signum: int, name: str) -> Tally:
    tally = Tally()
    for trial in range(trials):
        folder, home = fresh(base, f"{name}{trial}")
        proc = nbflow("execute", "faults.ipynb", "-p", "seed", str(trial), home=home,
                      cwd=folder)
        time.sleep(random.uniform(2.0, 9.0))  # start-up, load, mid-foreach or join
        children = descendants(proc.pid)
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=120)
        tally.trials += 1
        if signum == signal.SIGTERM and proc.returncode not in (0, 143):
            tally.notes.append(f"SIGTERM exit {proc.returncode}: {err.strip()[-200:]}")
        tally.orphans += orphans_left(children)
        if (home / "catalog.duckdb").exists() and query(home, "SELECT count(*) FROM runs")[0][0]:
            resume(home, folder, tally)
            check(home, folder, tally)
        else:  # killed before the run was recorded: nothing to resume
            tally.consistent += 1
            tally.notes.append(f"trial {trial}: killed before the run was recorded")
    return tally


def kill_kernel(base: Path, trials: int) -> Tally:
    tally = Tally()
    for trial in range(trials):
        folder, home = fresh(base, f"kernel{trial}")
        proc = nbflow("execute", "faults.ipynb", "-p", "nap", "4", home=home, cwd=folder)
        pid = wait_for_task(home, proc)
        children = descendants(proc.pid)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        _out, err = proc.communicate(timeout=300)
        tally.trials += 1
        if proc.returncode != 1:
            tally.notes.append(f"kernel kill: driver exit {proc.returncode}")
        tally.orphans += orphans_left([c for c in children if c.pid != pid])
        resume(home, folder, tally)
        check(home, folder, tally)
    return tally


def corrupt(base: Path, trials: int) -> Tally:
    tally = Tally()
    folder, home = fresh(base, "corrupt")
    for seed in range(2):
        assert run("execute", "faults.ipynb", "-p", "seed", str(seed), "-p", "nap", "0",
                   home=home, cwd=folder).returncode == 0
    expected = {t: query(home, f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}
    for trial in range(trials):
        copy = folder / f"home{trial}"
        shutil.copytree(home, copy)
        catalog = copy / "catalog.duckdb"
        size = catalog.stat().st_size
        with open(catalog, "r+b") as f:
            for offset in range(12288, size, 65536 * (trial + 1)):
                f.seek(offset)
                f.write(os.urandom(4096))
        tally.trials += 1
        done = run("catalog", "rebuild", home=copy, cwd=folder)
        if done.returncode != 0:
            tally.notes.append(f"rebuild exit {done.returncode}: {done.stderr.strip()[-200:]}")
            continue
        got = {t: query(copy, f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}
        lost = sum(len(set(expected[t]) ^ set(got[t])) for t in TABLES)
        tally.rows_lost += lost
        tally.consistent += lost == 0
        tally.tasks_lost += tasks_lost(copy)
    return tally


def concurrent(base: Path, trials: int) -> Tally:
    tally = Tally()
    for trial in range(trials):
        folder, home = fresh(base, f"conc{trial}")
        stop = threading.Event()
        reads: list[int] = [0]
        errors: list[str] = []

        def poll(home: Path = home, stop: threading.Event = stop, reads: list[int] = reads,
                 errors: list[str] = errors) -> None:
            while not stop.is_set():
                try:
                    if (home / "catalog.duckdb").exists():
                        query(home, "SELECT count(*) FROM tasks")
                        reads[0] += 1
                except Exception as exc:  # counted, reported
                    errors.append(repr(exc))
                stop.wait(0.5)

        reader = threading.Thread(target=poll)
        reader.start()
        procs = [nbflow("execute", "faults.ipynb", "-p", "seed", f"{trial}{k}", "-p", "nap",
                        "0.2", "--max-workers", "1", home=home, cwd=folder) for k in range(4)]
        codes = [p.wait(timeout=600) for p in procs]
        stop.set()
        reader.join()
        tally.trials += 1
        rows = query(home, "SELECT count(*) FROM tasks WHERE status = 'succeeded'")[0][0]
        tally.rows_lost += 4 * 6 - int(rows)  # 4 runs x (load + 4 work + join)
        if any(codes) or errors:
            tally.notes.append(f"exit codes {codes}, reader errors {errors[:2]}")
        tally.notes.append(f"trial {trial}: reader made {reads[0]} reads")
        check(home, folder, tally)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where to put the homes (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", default=None, metavar="SCENARIO",
                        help="run only these scenarios (repeatable)")
    args = parser.parse_args()
    random.seed(args.seed)
    base = Path(args.dir or tempfile.mkdtemp(prefix="nbflow-faults-"))
    print(f"load before: {os.getloadavg()}")
    scenarios = [
        ("kill-driver", lambda: signal_driver(base, args.trials, signal.SIGKILL, "kill")),
        ("kill-kernel", lambda: kill_kernel(base, args.trials)),
        ("sigterm", lambda: signal_driver(base, args.trials, signal.SIGTERM, "term")),
        ("corrupt", lambda: corrupt(base, args.trials)),
        ("concurrent", lambda: concurrent(base, args.trials)),
    ]
    header = f"{'scenario':<12} {'trials':>6} {'consistent':>10} {'tasks lost':>10} " \
             f"{'rows lost':>9} {'orphans':>7} {'resumed':>9}"
    results = []
    for name, scenario in scenarios:
        if args.only and name not in args.only:
            continue
        t0 = time.monotonic()
        tally = scenario()
        results.append((name, tally, time.monotonic() - t0))
        print(f"{name}: done in {time.monotonic() - t0:.0f} s", flush=True)
    print(header)
    for name, tally, _seconds in results:
        resumed = f"{tally.resumed}/{tally.resumes}" if tally.resumes else "-"
        print(f"{name:<12} {tally.trials:>6} {tally.consistent:>10} {tally.tasks_lost:>10} "
              f"{tally.rows_lost:>9} {tally.orphans:>7} {resumed:>9}")
    for name, tally, _seconds in results:
        for note in tally.notes:
            print(f"  {name}: {note}")
    print(f"load after: {os.getloadavg()}")
    if not args.dir:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
