"""``--backend dask`` against real scheduler and worker processes, with an S3 home on moto."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from daskcluster import Cluster, process_env, start_cluster, stop_cluster
from nbbuild import make_notebook
from nbtest import EXAMPLES, ROOT, nbflow_command, wait_for_workers

from nbflow.store.catalog import Catalog


def catalog_rows(tmp_path: Path, sql: str, params: list[object] | None = None) -> list[tuple]:
    return Catalog(tmp_path / ".nbflow" / "catalog.duckdb").execute_read(sql, params or [])


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


WIDE = [
    "import pandas as pd\n%load_ext nbflow",
    ("width = 20", ["parameters"]),
    "%%step load\nitems = list(range(width))",
    "%%branch square --foreach items --as i\nimport os\nsq = i * i\npid = os.getpid()",
    "%%step join\ntable = pd.DataFrame({'i': [t.i for t in square], 'sq': [t.sq for t in square]})\n"
    "total = int(table.sq.sum())",
]


@pytest.mark.timeout(900)
def test_foreach_of_20_on_the_cluster_then_a_cached_rerun_submits_nothing(run_dask, tmp_path,
                                                                           s3_home):
    make_notebook(WIDE, tmp_path / "wide.ipynb")
    first = ok(run_dask("execute", "wide.ipynb"))
    assert re.search(r"wide/1/load/0 started +pid \d+ \[\w+ on tcp://127\.0\.0\.1:\d+\]",
                     first.stderr), first.stderr
    rows = catalog_rows(tmp_path, "SELECT step, status, kernel_mode FROM tasks WHERE run_id = 1")
    assert len(rows) == 22 and {r[1] for r in rows} == {"succeeded"}
    assert all("on tcp://127.0.0.1:" in r[2] for r in rows)
    workers = {r[2].split(" on ")[1] for r in rows}
    assert len(workers) == 2, rows  # both workers took tasks

    import s3fs

    fs = s3fs.S3FileSystem()
    prefix = s3_home.removeprefix("s3://")
    assert fs.exists(f"{prefix}/runs/wide/1/join/0/manifest.json")
    assert fs.exists(f"{prefix}/runs/wide/1/square/19/notebook.ipynb")
    assert not (tmp_path / ".nbflow" / "objects").exists()  # objects went to S3 only

    again = ok(run_dask("execute", "wide.ipynb"))
    assert "started" not in again.stderr
    assert "reused without a kernel: 22 cached" in again.stderr
    assert catalog_rows(tmp_path, "SELECT count(*) FROM tasks WHERE run_id = 2 AND "
                                  "status = 'cached'") == [(22,)]

    # The client API and nbflow.sql read the artifacts back from S3, the catalog locally.
    script = (
        "import nbflow\n"
        "run = nbflow.Flow('wide').latest_successful_run\n"
        "print(run.data.total)\n"
        "print(nbflow.sql(\"SELECT sum(sq) AS s FROM artifact('wide/1/join/0', 'table')\").s[0])\n"
    )
    done = ok(subprocess.run([os.sys.executable, "-c", script], capture_output=True, text=True,
                             cwd=tmp_path, env={**process_env({}), "NBFLOW_HOME": s3_home}))
    expected = sum(i * i for i in range(20))
    assert done.stdout.split()[0] == str(expected)
    assert float(done.stdout.split()[-1]) == expected
    listed = ok(run_dask("runs", "wide.ipynb"))
    assert "succeeded" in listed.stdout


@pytest.mark.timeout(900)
def test_the_examples_run_on_the_cluster(run_dask, tmp_path):
    pytest.importorskip("sklearn")
    for name in ("classifier", "train", "predict"):
        shutil.copy(EXAMPLES / f"{name}.ipynb", tmp_path)
    ok(run_dask("execute", "classifier.ipynb"))
    ok(run_dask("execute", "train.ipynb"))
    ok(run_dask("execute", "predict.ipynb"))
    metrics = dict(catalog_rows(tmp_path, "SELECT name, value FROM metrics WHERE flow = "
                                          "'classifier' AND name = 'accuracy'"))
    assert 0.5 < metrics["accuracy"] <= 1.0
    lineage = catalog_rows(tmp_path, "SELECT count(*) FROM metrics WHERE flow = 'predict' AND "
                                     "name = 'n_predicted' AND value > 0")
    assert lineage == [(1,)]


FLAKY = [
    "import pathlib\n%load_ext nbflow",
    "%%step first\nbase = 10",
    "%%step second\nif not pathlib.Path('fixed').exists():\n    raise ValueError('not fixed yet')\n"
    "result = base + 1",
]


def test_a_user_error_is_returned_as_data_not_retried_and_the_run_resumes(run_dask, tmp_path):
    make_notebook(FLAKY, tmp_path / "flaky.ipynb")
    failed = run_dask("execute", "flaky.ipynb")
    assert failed.returncode == 1, failed.stderr
    assert "ValueError: not fixed yet" in failed.stderr
    assert "--resume 1" in failed.stderr
    assert catalog_rows(tmp_path, "SELECT step, status, attempt FROM tasks WHERE run_id = 1 "
                                  "ORDER BY step") == [("first", "succeeded", 1),
                                                       ("second", "failed", 1)]
    (tmp_path / "fixed").write_text("yes")
    resumed = ok(run_dask("execute", "flaky.ipynb", "--resume"))
    assert "first/0 started" not in resumed.stderr
    assert catalog_rows(tmp_path, "SELECT step, status FROM tasks WHERE run_id = 2 "
                                  "ORDER BY step") == [("first", "cloned"), ("second", "succeeded")]


SLOW = [
    "import os, pathlib, time\n%load_ext nbflow",
    ("marker = ''", ["parameters"]),
    "%%step slow\nimport psutil\npath = pathlib.Path(marker)\nfirst_attempt = not path.exists()\n"
    "path.write_text(' '.join(str(p.pid) for p in psutil.Process().parents()))\n"
    "if first_attempt:\n    time.sleep(120)\ndone = True",
]


def _worker_pid(ancestors: list[int]) -> int:
    """The Dask worker process among a kernel's ancestors (the nanny's child)."""
    import psutil

    for pid in ancestors:
        process = psutil.Process(pid)
        parent = process.parent()
        if parent is not None and "dask_worker" in " ".join(parent.cmdline()):
            return pid
    raise AssertionError(f"no worker process among {ancestors}")


def _start_until_marked(cluster: Cluster, home: str, cwd: Path, notebook: str,
                        marker: Path) -> subprocess.Popen[str]:
    """The driver of ``notebook`` on the cluster, once its task has written ``marker``."""
    env = {**process_env(cluster.env), "NBFLOW_HOME": home}
    driver = subprocess.Popen(
        [*nbflow_command(), "execute", notebook, "-p", "marker", str(marker),
         "--backend", "dask", "--scheduler", cluster.address],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (marker.exists() and marker.read_text().strip()):
        if driver.poll() is not None or time.time() >= deadline:
            driver.kill()
            raise AssertionError("the task never started")
        time.sleep(0.2)
    return driver


def test_a_worker_killed_mid_task_reruns_it_elsewhere_as_a_retry(cluster: Cluster, s3_home,
                                                                 tmp_path):
    make_notebook(SLOW, tmp_path / "slow.ipynb")
    marker = tmp_path / "started"
    driver = _start_until_marked(cluster, s3_home, tmp_path, "slow.ipynb", marker)
    try:
        victim = _worker_pid([int(p) for p in marker.read_text().split()])
        os.kill(victim, signal.SIGKILL)
        out, err = driver.communicate(timeout=180)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err
    assert re.search(r"slow/1/slow/0 failed .*retrying: worker tcp://\S+ was lost", err), err
    assert "(retry 1)" in err
    assert catalog_rows(tmp_path, "SELECT status, attempt FROM tasks WHERE step = 'slow'") == [
        ("succeeded", 2)]

    wait_for_workers(cluster.address, 2)  # the nanny restarts the killed worker


def test_an_unreachable_scheduler_fails_before_a_run_is_recorded(tmp_path, s3_home):
    from daskcluster import free_port

    make_notebook(FLAKY, tmp_path / "flaky.ipynb")
    done = subprocess.run(
        [*nbflow_command(), "execute", "flaky.ipynb", "--backend", "dask", "--scheduler",
         f"tcp://127.0.0.1:{free_port()}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**process_env({}), "NBFLOW_HOME": s3_home, "NBFLOW_DASK_CONNECT_TIMEOUT": "2"})
    assert done.returncode == 2, done.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".nbflow" / "catalog.duckdb").exists()


def test_a_cluster_with_another_nbflow_version_is_refused(s3, tmp_path):
    other = tmp_path / "other-nbflow"
    shutil.copytree(ROOT / "nbflow", other / "nbflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = other / "nbflow" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9.9.9+'))
    logs = tmp_path / "logs"
    logs.mkdir()
    env = process_env(s3.env)
    odd = start_cluster(env, 1, logs, worker_env=process_env(s3.env, str(other)))
    try:
        make_notebook(FLAKY, tmp_path / "flaky.ipynb")
        done = subprocess.run(
            [*nbflow_command(), "execute", "flaky.ipynb", "--backend", "dask", "--scheduler",
             odd.address], cwd=tmp_path, capture_output=True, text=True, timeout=120,
            env={**env, "NBFLOW_HOME": str(tmp_path / "home")})
    finally:
        stop_cluster(odd)
    assert done.returncode == 2, done.stderr
    assert "does not run this nbflow" in done.stderr
    assert re.search(r"worker tcp://127\.0\.0\.1:\d+: 9\.9\.9\+", done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "home" / "catalog.duckdb").exists()


SLEEPER = [
    "import os, pathlib, time\n%load_ext nbflow",
    ("marker = ''", ["parameters"]),
    "%%step sleeper\npathlib.Path(marker).write_text(str(os.getpid()))\ntime.sleep(300)\n"
    "done = True",
]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.timeout(600)
def test_ctrl_c_cancels_the_submitted_task_and_records_the_run_cancelled(cluster: Cluster,
                                                                         s3_home, tmp_path):
    make_notebook(SLEEPER, tmp_path / "sleeper.ipynb")
    marker = tmp_path / "pid"
    driver = _start_until_marked(cluster, s3_home, tmp_path, "sleeper.ipynb", marker)
    try:
        task_pid = int(marker.read_text())
        driver.send_signal(signal.SIGINT)
        _out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, err
    assert "Traceback" not in err
    assert catalog_rows(tmp_path, "SELECT status FROM runs") == [("cancelled",)]
    assert catalog_rows(tmp_path, "SELECT status FROM tasks WHERE step = 'sleeper'") == [
        ("cancelled",)]
    # Dask cannot stop a running task: the run's fork server on the worker is released,
    # which kills the task's process instead of leaving it to sleep on.
    deadline = time.time() + 60
    while _alive(task_pid):
        assert time.time() < deadline, f"the task's process {task_pid} still runs"
        time.sleep(0.2)
    with cluster.client() as client:  # type: ignore[attr-defined]
        assert not client.who_has(), "the cancelled future is still held on the cluster"
