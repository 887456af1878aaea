"""Start-up cost: what ``import nbflow`` pulls in, and how long ``nbflow --help`` takes.

Targets (issue: speed): ``import nbflow`` imports none of pandas, duckdb, papermill,
ipywidgets; ``nbflow --help`` returns in under 0.3 s. The bare interpreter's start-up is
measured in the same run as the baseline.

    python benchmarks/startup.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

HEAVY = ("pandas", "duckdb", "papermill", "ipywidgets", "pyarrow", "numpy", "nbformat")


def wall(command: list[str], repeat: int = 7) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def imported_by(statement: str) -> list[str]:
    probe = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout.split()
    return [m for m in HEAVY if m in out]


def main() -> None:
    print(f"load average: {os.getloadavg()}")
    print(f"heavy modules after `import nbflow`:       {imported_by('import nbflow') or 'none'}")
    help_heavy = imported_by("from nbflow.cli.main import cli")
    print(f"heavy modules after loading the CLI:       {help_heavy or 'none'}")
    bare = wall([sys.executable, "-c", "pass"])
    imp = wall([sys.executable, "-c", "import nbflow"])
    helped = wall([sys.executable, "-m", "nbflow", "--help"])
    print(f"python -c pass                 {bare * 1000:7.1f} ms")
    print(f"python -c 'import nbflow'      {imp * 1000:7.1f} ms  (+{(imp - bare) * 1000:.1f})")
    print(f"nbflow --help                  {helped * 1000:7.1f} ms  (+{(helped - bare) * 1000:.1f})"
          f"   target < 300 ms")


if __name__ == "__main__":
    main()
