"""The lab's analyse call on generated notebooks of 20, 100 and 400 cells (half of them steps).

For each size it prints milliseconds per call, as medians (and 90th percentiles) over
``--repeat`` calls:

* ``http``: ``POST /nbflow/api/analyze`` to a real jupyter_server (started here, with
  the nbflow extension) from a client on the same machine: what the panel waits for;
* ``in-process``: ``analyze_cells`` itself, the handler's work, measured in this process;
  each call edits one step cell (what typing does: the other cells' analysis is cached);
* ``cold``: the same with every cell's text new (a notebook just opened);
* ``+fresh``: the same with freshness, against a home whose catalog holds a run of
  another notebook (every step of this one "runs" and ``nbflow why`` looks up why),
  and, with ``--run``, against a home where this notebook ran (every step reused);
* ``show``: ``nbflow show NOTEBOOK`` as a subprocess (Python start-up included), and its
  work in-process (read + build the DAG + render; the file does not change between calls,
  so cell analyses are cached as for ``in-process``), on the same notebook in the same run.

    python benchmarks/analyze.py [--sizes 20 100 400] [--repeat 20] [--run]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from nbbuild import big_notebook  # noqa: E402

TOKEN = "nbflow-bench"


def generate(n_cells: int) -> dict[str, Any]:
    """The shared benchmark notebook (``tests/nbbuild.py``: ``big_notebook``, also timed by
    ``benchmarks/reading.py``) as plain JSON: setup, parameters, then steps and markdown
    alternating (half the cells are steps); each step reads two earlier steps' outputs."""
    nb: dict[str, Any] = json.loads(json.dumps(big_notebook(n_cells)))
    return nb


class Edits:
    """The cells as the browser sends them while someone types: each call changes one
    step cell (a different one each time), as a keystroke would."""

    def __init__(self, cells: list[dict[str, Any]]) -> None:
        self.cells = cells
        self.steps = [i for i, c in enumerate(cells) if c["source"].startswith("%%step")]
        self.count = 0

    def next(self) -> list[dict[str, Any]]:
        self.count += 1
        index = self.steps[self.count % len(self.steps)]
        edited = list(self.cells)
        edited[index] = {**edited[index],
                         "source": edited[index]["source"] + f"\nedit = {self.count}"}
        return edited

    def all_new(self) -> list[dict[str, Any]]:
        """Every cell's text unseen (a notebook just opened): no cached cell analysis."""
        self.count += 1
        return [{**c, "source": c["source"] + f"\n# {self.count}"} if c["cell_type"] == "code"
                else c for c in self.cells]


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(median, p90) milliseconds after two warm-up calls."""
    for _ in range(2):
        function()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        function()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.9 * len(samples)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = root.parent / "jupyter-config"
    config.mkdir(exist_ok=True)
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"jpserver_extensions": {"nbflow.server": True}},
        "NbflowServer": {"home": str(home)}}))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
         f"--port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={TOKEN}"],
        cwd=root, env={**os.environ, "JUPYTER_CONFIG_DIR": str(config)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("jupyter_server did not start") from None
            time.sleep(0.3)


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/nbflow/api/analyze", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        reply: dict[str, Any] = json.loads(response.read())
    return reply


def seed_other_run(home: Path, work: Path) -> None:
    """A catalog with one run of another notebook, so freshness has something to read."""
    from nbflow.store.catalog import Catalog
    from nbflow.store.events import RunFinished, RunRecord

    catalog = Catalog(home / "catalog.duckdb")
    run_id = catalog.new_run(RunRecord(flow="other", notebook_path=str(work / "other.ipynb")))
    catalog.apply([RunFinished(flow="other", run_id=run_id, status="succeeded",
                               ended_at=time.time())])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100, 400])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--run", action="store_true",
                        help="also run each notebook once headless and time the analysis "
                             "with every step fresh (starts a kernel per step)")
    args = parser.parse_args()

    print(f"load before: {os.getloadavg()[0]:.2f}  (cpus: {os.cpu_count()})")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        home = work / ".nbflow"
        seeded = Path(tmp) / "seeded"
        seed_other_run(seeded, work)
        server, url = start_server(work, home)
        try:
            print(f"{'cells':>6} {'steps':>6} {'http':>14} {'in-process':>14} "
                  f"{'cold':>14} {'+fresh':>14} {'show (proc)':>12} {'show (work)':>12}")
            for size in args.sizes:
                path = work / f"nb{size}.ipynb"
                nb = generate(size)
                path.write_text(json.dumps(nb, indent=1))
                print(measure(path, nb, url, seeded, args.repeat), flush=True)
                if args.run:
                    run_and_time(path, nb, home, args.repeat)
        finally:
            server.terminate()
            server.wait(30)
    print(f"load after: {os.getloadavg()[0]:.2f}   (ms: median / p90 per call)")


def measure(path: Path, nb: dict[str, Any], url: str, seeded: Path, repeat: int) -> str:
    """One line of the table for one notebook."""
    from nbflow.graph import render
    from nbflow.run.driver import prepare
    from nbflow.server.analysis import analyze_cells
    from nbflow.store.home import Home

    reply = post(url, {"path": path.name, "cells": nb["cells"]})
    assert not reply["errors"], reply["errors"][:3]
    edits = Edits(nb["cells"])
    http = timed(lambda: post(url, {"path": path.name, "cells": edits.next()}), repeat)
    local = timed(lambda: analyze_cells(str(path), edits.next(), metadata=nb["metadata"]),
                  repeat)
    cold = timed(lambda: analyze_cells(str(path), edits.all_new(), metadata=nb["metadata"]),
                 repeat)
    fresh = timed(lambda: analyze_cells(str(path), edits.next(), metadata=nb["metadata"],
                                        home=Home(str(seeded))), repeat)
    show = timed(lambda: subprocess.run([sys.executable, "-m", "nbflow", "show", str(path)],
                                        check=True, capture_output=True), max(3, repeat // 5))
    show_work = timed(lambda: render.render_text(prepare(str(path))[1]), repeat)
    return (f"{len(nb['cells']):>6} {len(reply['steps']):>6} {_ms(http):>14} {_ms(local):>14} "
            f"{_ms(cold):>14} {_ms(fresh):>14} {show[0]:>9.1f} ms {show_work[0]:>9.1f} ms")


def run_and_time(path: Path, nb: dict[str, Any], home: Path, repeat: int) -> None:
    from nbflow.server.analysis import analyze_cells
    from nbflow.store.home import Home

    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "nbflow", "execute", str(path), "--home", str(home),
                    "-q"], check=True, capture_output=True)
    ran = time.monotonic() - t0
    reply = analyze_cells(str(path), nb["cells"], metadata=nb["metadata"], home=Home(str(home)))
    assert {s["fresh"] for s in reply["steps"]} == {True}, reply["steps"][:2]
    fresh = timed(lambda: analyze_cells(str(path), nb["cells"], metadata=nb["metadata"],
                                        home=Home(str(home))), repeat)
    print(f"{'':>6} {'':>6} after a run ({ran:.0f} s), every step fresh: {_ms(fresh)}",
          flush=True)


def _ms(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.1f} / {pair[1]:.1f}"


if __name__ == "__main__":
    main()
