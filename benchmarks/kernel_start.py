"""Per-task kernel cost: start + run a trivial 3-cell notebook + shut down, N times.

    python benchmarks/kernel_start.py [--n 40] [--threads 1 2] [--modes fork spawn papermill]

Modes: ``fork`` and ``spawn`` go through KernelLauncher + nbflow's execute_notebook;
``fork+prestart`` keeps 2 kernels forked ahead; ``papermill`` is plain
``papermill.execute_notebook`` starting its own fresh kernel each time (the baseline).
Each mode is warmed up once (fork server start, ``import papermill``) before timing.
Prints ms per kernel, the ratio to papermill, and the load average around each run:
the numbers mean little on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nbformat  # noqa: E402
from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402

from nbflow.kernel.execute import execute_notebook  # noqa: E402
from nbflow.kernel.launcher import KernelLauncher  # noqa: E402

NB = new_notebook(
    cells=[new_code_cell("x = 1"), new_code_cell("y = x + 1"), new_code_cell("print(x + y)")],
    metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "p"}},
)


def check(nb: nbformat.NotebookNode) -> None:
    assert nb.cells[2].outputs[0]["text"] == "3\n", nb.cells[2].outputs


def launcher_task(launcher: KernelLauncher) -> Callable[[], None]:
    def task() -> None:
        kernel = launcher.start()
        try:
            check(execute_notebook(NB, kernel, cwd=kernel.cwd, timeout=60))
        finally:
            kernel.shutdown()

    return task


def papermill_task() -> None:
    import papermill

    check(papermill.execute_notebook(NB, None, kernel_name="python3", progress_bar=False,
                                     request_save_on_cell_execute=False))


def measure(task: Callable[[], None], n: int, threads: int) -> float:
    task()  # warm-up: fork server, imports
    began = time.perf_counter()
    if threads == 1:
        for _ in range(n):
            task()
    else:
        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(task) for _ in range(n)]:
                future.result()
    return (time.perf_counter() - began) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+",
                        default=["fork", "fork+prestart", "spawn", "papermill"])
    parser.add_argument("--preload", nargs="*", default=["numpy", "pandas"])
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, N={args.n}, preload={args.preload}")
    rows: dict[tuple[str, int], float] = {}
    for mode in args.modes:
        launcher = None
        if mode == "papermill":
            task: Callable[[], None] = papermill_task
        else:
            launcher = KernelLauncher(
                mode=mode.split("+")[0], preload=args.preload,
                prestart=2 if mode.endswith("prestart") else 0,
            )
            task = launcher_task(launcher)
        try:
            for threads in args.threads:
                load_before = os.getloadavg()[0]
                rows[mode, threads] = ms = measure(task, args.n, threads)
                load_after = os.getloadavg()
                print(f"{mode:>14} threads={threads}: {ms:7.1f} ms/kernel   "
                      f"load {load_before:.2f} -> {load_after[0]:.2f} "
                      f"(5m {load_after[1]:.2f})", flush=True)
        finally:
            if launcher is not None:
                launcher.close()
    print()
    for threads in args.threads:
        base = rows.get(("papermill", threads))
        for mode in args.modes:
            if (mode, threads) in rows and base:
                ms = rows[mode, threads]
                print(f"threads={threads} {mode:>14}: {ms:7.1f} ms  "
                      f"= papermill / {base / ms:4.1f}")


if __name__ == "__main__":
    main()
