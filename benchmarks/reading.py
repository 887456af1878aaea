"""The reading side: ``nbflow show`` and ``nbflow why`` on notebooks of 20, 100 and 400 cells.

The notebooks come from ``tests/nbbuild.py``'s ``big_notebook`` (setup, parameters, then
steps and markdown alternating: half the cells are steps, each reading two earlier
steps), the same ones ``benchmarks/analyze.py`` times. Each is run once headless into a
fresh home first, so ``why`` explains a notebook that ran (every step reused) and reads
a real catalog. Then, in interleaved rounds, every command runs once per round through
the real CLI (a new process each time: Python start-up and imports included), next to
``python -c pass`` (the interpreter's own start-up, measured in the same rounds).

For each it prints the median wall time and the median CPU time (user + system of the
child: less sensitive than wall time to other processes on a loaded machine), the
multiple of ``python -c pass``, and the load. Target: under 0.3 s wall each for 400
cells. Asserts nothing on time.

By default nbflow's modules are byte-compiled first (``compileall``, as ``pip install``
does; this machine sets PYTHONDONTWRITEBYTECODE, so an editable checkout would otherwise
compile every module in every process); ``--no-compile`` measures without.

    python benchmarks/reading.py [--sizes 20 100 400] [--repeat 7] [--no-compile]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nbformat  # noqa: E402
from nbbuild import big_notebook  # noqa: E402


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100, 400])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-compile", action="store_true",
                        help="do not byte-compile nbflow's modules first")
    args = parser.parse_args()
    import nbflow

    package = Path(nbflow.__file__).parent
    if not args.no_compile:
        compileall.compile_dir(str(package), quiet=1)
    nbflow_cli = [sys.executable, "-m", "nbflow"]
    print(f"nbflow from {package} ({'byte-compiled' if not args.no_compile else 'no bytecode'})"
          f"; load before: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})", flush=True)
    with tempfile.TemporaryDirectory(prefix="nbflow-reading-") as tmp:
        place = Path(tmp)
        home = place / ".nbflow"
        env = {**os.environ, "NBFLOW_HOME": str(home)}
        commands: dict[str, list[str]] = {"python -c pass": [sys.executable, "-c", "pass"]}
        for size in args.sizes:
            name = f"nb{size}.ipynb"
            nbformat.write(big_notebook(size), place / name)
            t0 = time.perf_counter()
            subprocess.run([*nbflow_cli, "execute", name, "-q"], cwd=place, env=env,
                           check=True, capture_output=True)
            print(f"ran {name} once ({time.perf_counter() - t0:.0f} s)", flush=True)
            commands[f"show {size}"] = [*nbflow_cli, "show", name]
            commands[f"why {size}"] = [*nbflow_cli, "why", name]
        samples: dict[str, list[tuple[float, float]]] = {label: [] for label in commands}
        loads = [os.getloadavg()[0]]
        for _ in range(args.repeat):
            for label, cmd in commands.items():
                samples[label].append(timed(cmd, place, env))
            loads.append(os.getloadavg()[0])
    base_wall = statistics.median(w for w, _ in samples["python -c pass"])
    base_cpu = statistics.median(c for _, c in samples["python -c pass"])
    print(f"{'command':<16} {'wall (s)':>9} {'cpu (s)':>8} {'wall/pass':>10} {'cpu/pass':>9} "
          f"{'cpu - pass':>11}")
    for label, pairs in samples.items():
        wall = statistics.median(w for w, _ in pairs)
        cpu = statistics.median(c for _, c in pairs)
        print(f"{label:<16} {wall:>9.3f} {cpu:>8.3f} {wall / base_wall:>10.2f} "
              f"{cpu / base_cpu:>9.2f} {cpu - base_cpu:>11.3f}")
    print(f"medians of {args.repeat} interleaved rounds; load 1m during: "
          f"{min(loads):.2f}–{max(loads):.2f}, after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
