"""The Dask scheduler killed mid-run: the run is recorded failed with the reason, and
``--resume`` on a new cluster finishes it. A module of its own: it kills its cluster."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from daskcluster import process_env, start_cluster, stop_cluster
from nbbuild import make_notebook
from nbtest import nbflow_command

from nbflow.store.catalog import Catalog

STEPS = [
    "import pathlib, time\n%load_ext nbflow",
    ("marker = ''", ["parameters"]),
    "%%step first\nbase = 10",
    "%%step second\npath = pathlib.Path(marker)\nfirst_attempt = not path.exists()\n"
    "path.write_text('started')\nif first_attempt:\n    time.sleep(120)\nresult = base + 1",
]


def rows(tmp_path: Path, sql: str) -> list[tuple]:
    return Catalog(tmp_path / ".nbflow" / "catalog.duckdb").execute_read(sql, [])


@pytest.mark.timeout(900)
def test_the_scheduler_killed_mid_run_fails_the_run_with_the_reason_and_it_resumes(
        s3, s3_home, tmp_path):
    make_notebook(STEPS, tmp_path / "lost.ipynb")
    marker = tmp_path / "started"
    env = {**process_env(s3.env), "NBFLOW_HOME": s3_home}
    logs = tmp_path / "logs"
    logs.mkdir()
    cluster = start_cluster(process_env(s3.env), 1, logs)
    command = [*nbflow_command(), "execute", "lost.ipynb", "--backend", "dask"]
    try:
        driver = subprocess.Popen([*command, "-p", "marker", str(marker), "--scheduler",
                                   cluster.address], cwd=tmp_path,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        try:
            deadline = time.time() + 120
            while not marker.exists():
                assert driver.poll() is None and time.time() < deadline, "second never started"
                time.sleep(0.2)
            cluster.processes[0].send_signal(signal.SIGKILL)  # the scheduler
            _out, err = driver.communicate(timeout=300)
        finally:
            if driver.poll() is None:
                driver.kill()
    finally:
        stop_cluster(cluster)
    assert driver.returncode == 1, err  # a step failed (DESIGN: exit codes)
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if "distributed" in line] == [], err  # no log noise
    lost = f"lost the Dask scheduler at {cluster.address} while the task ran"
    assert f"step 'second': {lost}" in err, err
    assert "fix what the error says, then continue with: nbflow execute lost.ipynb --resume 1" \
        in err, err
    [(status, error)] = rows(tmp_path, "SELECT status, error FROM runs")
    assert status == "failed"
    assert lost in (error or ""), error
    assert rows(tmp_path, "SELECT step, status FROM tasks WHERE run_id = 1 ORDER BY step") == [
        ("first", "succeeded"), ("second", "failed")]

    again = start_cluster(process_env(s3.env), 1, logs)
    try:
        resumed = subprocess.run([*command, "--scheduler", again.address, "--resume"],
                                 cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=600)
    finally:
        stop_cluster(again)
    assert resumed.returncode == 0, resumed.stderr
    assert rows(tmp_path, "SELECT step, status FROM tasks WHERE run_id = 2 ORDER BY step") == [
        ("first", "cloned"), ("second", "succeeded")]
