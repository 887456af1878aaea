"""The reading side on a big notebook: ``nbflow show`` and ``nbflow why`` on 400 cells.

Builds a notebook of 400 cells (setup, parameters, then 398 steps: a chain with
fan-in every few cells), runs each command through the real CLI on a fresh home
(``why`` therefore reads an empty catalog) and prints the median wall time of
``--repeat`` runs and the load. Target: under 0.3 s each. Asserts nothing on time.

    python benchmarks/reading.py [--cells 400] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat


def big_notebook(cells: int) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = nbformat.v4.new_code_cell("scale = 2")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("import math\n%load_ext nbflow"), params]
    for i in range(cells - 2):
        reads = f"v{i - 1} + v{max(i - 5, 0)}" if i else "scale"
        nb.cells.append(nbformat.v4.new_code_cell(f"%%step s{i}\nv{i} = math.floor({reads})"))
    return nb


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    script = Path(sys.executable).parent / "nbflow"
    nbflow = [str(script)] if script.exists() else [sys.executable, "-m", "nbflow"]
    with tempfile.TemporaryDirectory(prefix="nbflow-reading-") as tmp:
        place = Path(tmp)
        nbformat.write(big_notebook(args.cells), place / "big.ipynb")
        env = {**os.environ, "NBFLOW_HOME": str(place / ".nbflow")}
        for command in (["show", "big.ipynb"], ["why", "big.ipynb"]):
            load = os.getloadavg()[0]
            walls = [timed([*nbflow, *command], place, env) for _ in range(args.repeat)]
            print(f"nbflow {command[0]:<5} {args.cells} cells: median {statistics.median(walls):.3f} s "
                  f"(runs {', '.join(f'{w:.2f}' for w in walls)}; load 1m {load:.2f} → "
                  f"{os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
