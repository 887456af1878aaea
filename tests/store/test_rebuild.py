"""The catalog is an index of the runs' journals and manifests: deleted, truncated or
corrupted, ``nbflow catalog rebuild`` gives back every row."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from nbbuild import make_notebook
from nbtest import nbflow_command, query, run_nbflow

TABLES = ["runs", "params", "tags", "steps", "tasks", "artifacts"]


def _rows(home: Path) -> dict[str, list[tuple[object, ...]]]:
    return {table: query(home, f"SELECT * FROM {table} ORDER BY ALL") for table in TABLES}


def _kill_while_running(folder: Path, home: Path, step: str, *args: str) -> None:
    proc = subprocess.Popen([*nbflow_command(), "execute", "many.ipynb", *args], cwd=folder,
                            env={**os.environ, "NBFLOW_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if query(home, "SELECT 1 FROM tasks WHERE step = ? AND status = 'running' "
                 "AND run_id = (SELECT max(run_id) FROM runs)", [step]):
            break
    else:
        proc.kill()
        raise AssertionError(f"step {step!r} never started")
    time.sleep(1.5)  # a heartbeat or two after the task started
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def several_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A home with a succeeded, a failed, a crashed, a cached, a retried and a resumed run."""
    folder = tmp_path_factory.mktemp("rebuild")
    make_notebook([
        "import pathlib, time",
        ("fail = False\nnap = 0\nn = 3", ["parameters"]),
        "%%step load\nitems = list(range(n))\nmean = sum(items) / n",
        "%%branch work --foreach items --as i\nsquare = i * i",
        "%%step slow\ntime.sleep(nap)\ntotal = sum(t.square for t in work)",
        "%%step flaky --retry 2\nmark = pathlib.Path(f'tried-{n}')\nfirst = not mark.exists()\n"
        "mark.touch()\nassert not (first and n == 4), 'first attempt fails'",
        "%%step check\nassert not fail, 'asked to fail'\nresult = total + 1",
    ], folder / "many.ipynb")
    home = folder / ".nbflow"

    def execute(*args: str, code: int = 0) -> None:
        done = run_nbflow("execute", "many.ipynb", *args, home=home, cwd=folder)
        assert done.returncode == code, done.stderr

    execute("--tag", "first")                         # 1 succeeded
    execute("-p", "fail", "True", code=1)             # 2 failed
    _kill_while_running(folder, home, "slow", "-p", "nap", "60", "-p", "n", "5")  # 3 crashed
    execute("-p", "n", "4")                           # 4 a retried task; records 3 crashed
    execute()                                         # 5 every task cached
    execute("--resume", "2", code=1)                  # 6 cloned tasks, fails again
    statuses = [r[0] for r in query(home, "SELECT status FROM runs ORDER BY run_id")]
    assert statuses == ["succeeded", "failed", "crashed", "succeeded", "succeeded", "failed"]
    return folder, home


def _damage(catalog: Path, how: str) -> None:
    if how == "deleted":
        catalog.unlink()
    elif how == "truncated":
        os.truncate(catalog, catalog.stat().st_size // 3)
    else:
        size = catalog.stat().st_size
        with open(catalog, "r+b") as f:
            for offset in range(12288, size, 131072):
                f.seek(offset)
                f.write(os.urandom(4096))


@pytest.mark.parametrize("how", ["deleted", "truncated", "corrupted"])
def test_rebuild_gives_back_every_row(several_runs: tuple[Path, Path], tmp_path: Path,
                                      how: str) -> None:
    folder, original = several_runs
    expected = _rows(original)
    home = tmp_path / "home"
    shutil.copytree(original, home)
    _damage(home / "catalog.duckdb", how)
    if how != "deleted":
        damaged = run_nbflow("runs", home=home, cwd=folder)
        assert damaged.returncode == 3, damaged.stderr
        assert "nbflow catalog rebuild" in damaged.stderr
    done = run_nbflow("catalog", "rebuild", home=home, cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "6 run(s)" in done.stdout
    rebuilt = _rows(home)
    for table in TABLES:
        assert rebuilt[table] == expected[table], table
    assert not list(home.glob("catalog.duckdb.rebuild-*"))


def test_the_rebuilt_catalog_keeps_what_each_run_recorded(several_runs: tuple[Path, Path]
                                                          ) -> None:
    _folder, home = several_runs
    crashed = query(home, "SELECT ended_at > started_at, error FROM runs WHERE run_id = 3")
    assert crashed == [(True, "the nbflow process running it died")]
    retried = query(home, "SELECT attempt, retry_errors FROM tasks WHERE run_id = 4 "
                    "AND step = 'flaky'")
    assert retried[0][0] == 2 and "attempt 1:" in retried[0][1]
    assert "first attempt fails" in retried[0][1]
    assert query(home, "SELECT count(*) FROM tasks WHERE run_id = 5 AND status = 'cached'")[0][0] > 0
    assert query(home, "SELECT count(*) FROM tasks WHERE run_id = 6 AND status = 'cloned'")[0][0] > 0


def test_check_reports_what_differs(several_runs: tuple[Path, Path], tmp_path: Path) -> None:
    folder, original = several_runs
    same = run_nbflow("catalog", "check", home=original, cwd=folder)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "matches the journals of 6 run(s)" in same.stdout
    home = tmp_path / "home"
    shutil.copytree(original, home)
    from nbflow.store.catalog import Catalog

    Catalog(home / "catalog.duckdb").apply_sql([
        ("DELETE FROM artifacts WHERE run_id = 1 AND name = 'total'", []),
        ("UPDATE runs SET status = 'cancelled' WHERE run_id = 2", []),
    ])
    differs = run_nbflow("catalog", "check", home=home, cwd=folder)
    assert differs.returncode == 3
    assert "artifacts: 0 row(s) only in the catalog, 1 only in the journals" in differs.stdout
    assert "runs: 1 row(s) only in the catalog, 1 only in the journals" in differs.stdout
    assert "nbflow catalog rebuild" in differs.stderr
