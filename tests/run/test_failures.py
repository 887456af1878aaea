"""What a user sees when things go wrong: clear errors, nothing recorded lost."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
from nbbuild import make_notebook
from nbtest import nbflow_command, query


def test_failing_step_exit_code_message_and_independent_work(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([
        "import time",
        "%%step ok\na = 1",
        "%%step bad\nb = a / 0",
        "%%step independent\ntime.sleep(1)\nc = 2",
        "%%step after_bad\nd = b + 1",
    ], tmp_path / "fails.ipynb")
    done = nbflow("execute", str(nb), "--max-workers", "2")
    assert done.returncode == 1
    err = done.stderr
    assert "cell 3" in err and "step 'bad'" in err and "ZeroDivisionError" in err
    assert "b = a / 0" in err  # the traceback shows the failing line
    assert "Traceback (most recent call last)" not in err.split("FAILED")[0]  # no driver traceback
    status = dict(query(home, "SELECT step, status FROM tasks"))
    assert status == {"ok": "succeeded", "bad": "failed", "independent": "succeeded"}
    assert query(home, "SELECT status, error IS NOT NULL FROM runs") == [("failed", True)]
    error = query(home, "SELECT error FROM tasks WHERE step = 'bad'")[0][0]
    assert "ZeroDivisionError" in error
    # the artifacts of the steps that succeeded are recorded and loadable
    from nbflow.client.objects import Run

    assert Run("fails/1", home=str(home))["independent"].task.data.c == 2
    # the failed task's log: its traceback (plain text) and the one-line error
    task = Run("fails/1", home=str(home))["bad"].task
    assert task.traceback is not None and "----> 1 b = a / 0" in task.traceback
    assert "\x1b[" not in task.traceback
    logs = nbflow("logs", "fails/1/bad")
    assert logs.returncode == 0 and "----> 1 b = a / 0" in logs.stderr
    assert "fails.ipynb, cell 3, step 'bad'" in logs.stderr.split("----> 1")[1]
    assert Run("fails/1", home=str(home))["ok"].task.traceback is None


def test_unserializable_artifact_fails_only_its_reader(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([
        "import threading",
        "%%step make\nlock = threading.Lock()\nok = 1",
        "%%step use_ok\nok2 = ok + 1",
        "%%step use_lock\nwith lock:\n    pass",
    ], tmp_path / "unser.ipynb")
    done = nbflow("execute", str(nb), "--max-workers", "1")
    assert done.returncode == 1
    rows = query(home, "SELECT persisted, reason FROM artifacts WHERE name = 'lock'")
    assert rows and rows[0][0] is False and "lock" in rows[0][1].lower()
    status = dict(query(home, "SELECT step, status FROM tasks"))
    assert status["make"] == "succeeded" and status["use_ok"] == "succeeded"
    assert "step 'use_lock'" in done.stderr and "'lock'" in done.stderr
    # the reader's error names what it read, who could not store it, and why
    assert re.search(r"step 'use_lock': reads 'lock', which step 'make' could not store: "
                     r"_thread\.lock could not be stored: TypeError: .*pickle.* — to store it, "
                     r"register a serializer for _thread\.lock", done.stderr), done.stderr


def test_retry_reruns_a_failed_task(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([
        "import pathlib",
        "%%step flaky --retry 2\np = pathlib.Path('attempts.txt')\n"
        "k = int(p.read_text()) if p.exists() else 0\np.write_text(str(k + 1))\n"
        "assert k >= 1, 'the first attempt fails'",
    ], tmp_path / "flaky.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "attempts.txt").read_text() == "2"
    assert query(home, "SELECT status, attempt FROM tasks") == [("succeeded", 2)]
    # the retry line and the catalog both say why the attempt failed
    line = next(ln for ln in done.stderr.splitlines() if "retrying (1/2)" in ln)
    assert "AssertionError: the first attempt fails" in line
    (errors,) = query(home, "SELECT retry_errors FROM tasks")[0]
    assert errors.startswith("attempt 1: ") and "the first attempt fails" in errors


def test_timeout_kills_a_hung_task(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([
        "import time",
        "%%step slow --timeout 2\ntime.sleep(120)",
    ], tmp_path / "slow.ipynb")
    t0 = time.monotonic()
    done = nbflow("execute", str(nb))
    assert time.monotonic() - t0 < 60
    assert done.returncode == 1
    assert "step 'slow'" in done.stderr and "2 s" in done.stderr
    assert query(home, "SELECT status FROM tasks") == [("failed",)]


def test_max_num_splits_is_enforced_before_fan_out(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([
        ("n = 5", ["parameters"]),
        "%%step start\nitems = list(range(n))",
        "%%branch work --foreach items\nout = item",
    ], tmp_path / "wide.ipynb")
    done = nbflow("execute", str(nb), "--max-num-splits", "3")
    assert done.returncode == 1
    assert "5 elements" in done.stderr and "--max-num-splits" in done.stderr
    assert query(home, "SELECT count(*) FROM tasks WHERE step = 'work'") == [(0,)]


def test_validation_errors_stop_before_any_kernel(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([
        "x = 1",
        "%%step a\ny = x",
        "%%step a\nz = 2",
        "%%step b --after nowhere\nw = 3",
    ], tmp_path / "invalid.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 2
    assert "cell 3" in done.stderr and "cell 4" in done.stderr and "nowhere" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (home / "catalog.duckdb").exists()


def test_bad_magic_line_is_a_short_error(tmp_path: Path, nbflow) -> None:
    nb = make_notebook(["x = 1", "%%step a --retries 2\ny = x"], tmp_path / "magic.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 2
    assert "cell 2" in done.stderr and "--retry" in done.stderr
    assert "Traceback" not in done.stderr and "usage:" not in done.stderr


def test_ctrl_c_cancels_the_run_and_stops_kernels(tmp_path: Path, home: Path) -> None:
    nb = make_notebook([
        "import time",
        "%%step sleepy\ntime.sleep(120)",
    ], tmp_path / "sleepy.ipynb")
    proc = subprocess.Popen(
        [*nbflow_command(), "execute", str(nb)], cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "NBFLOW_HOME": str(home)},
    )
    deadline = time.monotonic() + 60
    pid = None
    while time.monotonic() < deadline and pid is None:
        time.sleep(0.5)
        if (home / "catalog.duckdb").exists():
            rows = query(home, "SELECT pid FROM tasks WHERE status = 'running'")
            pid = rows[0][0] if rows else None
    assert pid is not None, "the task never started"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert query(home, "SELECT status FROM runs") == [("cancelled",)]
    assert query(home, "SELECT status FROM tasks") == [("cancelled",)]
    time.sleep(0.5)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_two_concurrent_runs_on_one_home_keep_every_row(tmp_path: Path, home: Path) -> None:
    nb = make_notebook([
        ("n = 4", ["parameters"]),
        "%%step start\nitems = list(range(n))",
        "%%branch work --foreach items --as i\nout = i * 2",
        "%%step join\ntotal = sum(t.out for t in work)",
    ], tmp_path / "conc.ipynb")
    env = {**os.environ, "NBFLOW_HOME": str(home)}
    procs = [
        subprocess.Popen([*nbflow_command(), "execute", str(nb), "--max-workers", "1"],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    assert query(home, "SELECT run_id, status FROM runs ORDER BY run_id") == [
        (1, "succeeded"), (2, "succeeded")]
    assert query(home, "SELECT run_id, count(*) FROM tasks GROUP BY run_id ORDER BY run_id") == [
        (1, 6), (2, 6)]
    per_run = query(home, "SELECT run_id, count(*) FROM artifacts GROUP BY run_id ORDER BY run_id")
    assert per_run[0][1] == per_run[1][1] > 0
    totals = query(home, "SELECT value FROM metrics WHERE name = 'total'")
    assert [json.loads(str(t[0])) for t in totals] == [12, 12]


def test_a_missing_kernelspec_names_the_kernel_and_where_to_change_it(
        tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(["%%step first\nx = 1", "%%step second --kernel nosuch_step\ny = x"],
                       tmp_path / "nokernel.ipynb", kernel_name="nosuch_notebook")
    done = nbflow("execute", str(nb))
    assert done.returncode == 1, done.stderr
    err = done.stderr
    assert "Traceback" not in err
    assert "cell 1, step 'first'" in err and "kernel 'nosuch_notebook'" in err
    assert "installed kernelspecs: " in err and "python3" in err
    assert "change the notebook's kernel" in err and "--kernel" not in err
    assert "continue with: nbflow execute" in err and "--resume 1" in err
    assert query(home, "SELECT status FROM runs") == [("failed",)]

    # The step's own --kernel: fixed in the notebook, the run resumes past `first`.
    nb = make_notebook(["%%step first\nx = 1", "%%step second --kernel nosuch_step\ny = x"],
                       tmp_path / "nokernel.ipynb")
    done = nbflow("execute", str(nb), "--resume", "1")
    assert done.returncode == 1, done.stderr
    assert "kernel 'nosuch_step'" in done.stderr and "change the step's --kernel" in done.stderr
