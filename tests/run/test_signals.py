"""SIGTERM cancels like Ctrl-C; Ctrl-C works even for a driver started with SIGINT ignored;
a crashed run ends when its driver died and reads as crashed without anyone writing."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from nbbuild import make_notebook
from nbtest import nbflow_command, query, run_nbflow


def _start(folder: Path, home: Path, notebook: Path, *, ignore_sigint: bool = False,
           tmpdir: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "NBFLOW_HOME": str(home)}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)

    command = [*nbflow_command(), "execute", str(notebook)]
    if ignore_sigint:  # what a shell does to a background job of a script
        command = ["bash", "-c", f'trap "" INT; exec {shlex.join(command)}']
    return subprocess.Popen(command, cwd=folder, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _running_task_pid(home: Path, proc: subprocess.Popen[str], step: str = "sleepy") -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.3)
        if (home / "catalog.duckdb").exists():
            rows = query(home, "SELECT pid FROM tasks WHERE status = 'running' AND step = ?",
                         [step])
            if rows and rows[0][0]:
                return int(rows[0][0])
    proc.kill()
    raise AssertionError(f"the task never started: {proc.communicate()[1]}")


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def sleepy(tmp_path: Path) -> Path:
    return make_notebook(["import time", "%%step quick\nx = 1",
                          "%%step sleepy\ntime.sleep(300)\ny = x"], tmp_path / "sleepy.ipynb")


@pytest.mark.parametrize(("signum", "code", "ignore_sigint"), [
    (signal.SIGTERM, 143, False),
    (signal.SIGINT, 130, True),   # started with SIGINT ignored, like `nbflow execute … &`
    (signal.SIGINT, 130, False),
], ids=["sigterm", "sigint-when-ignored-at-start", "sigint"])
def test_a_signal_cancels_the_run_cleanly(tmp_path: Path, home: Path, sleepy: Path,
                                          signum: int, code: int, ignore_sigint: bool) -> None:
    tmpdir = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))  # short: kernels' socket paths
    proc = _start(tmp_path, home, sleepy, ignore_sigint=ignore_sigint, tmpdir=tmpdir)
    pid = _running_task_pid(home, proc)
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=90)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert "run sleepy/1 cancelled" in err  # the summary
    assert f"\ncontinue with: nbflow execute {sleepy} --resume 1" in err
    assert "fix the notebook" not in err  # nothing in it is wrong
    assert query(home, "SELECT status FROM runs") == [("cancelled",)]
    assert query(home, "SELECT step, status FROM tasks ORDER BY step") == [
        ("quick", "succeeded"), ("sleepy", "cancelled")]
    assert _gone(pid), "the task's kernel outlived the run"
    assert list(tmpdir.iterdir()) == [], "temporary folders were left behind"
    tmpdir.rmdir()


def test_a_crashed_run_ends_when_its_driver_died(tmp_path: Path, home: Path,
                                                 sleepy: Path) -> None:
    proc = _start(tmp_path, home, sleepy)
    pid = _running_task_pid(home, proc)
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert _gone(pid), "the task's kernel outlived its driver"
    time.sleep(2)  # the crash is noticed later than it happened
    before = sorted(p.name for p in home.rglob("*"))
    done = run_nbflow("sql", "SELECT status, ended_at, error FROM runs", home=home,
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "crashed" in done.stdout and "the nbflow process running it died" in done.stdout
    from nbflow.client.query import sql

    frame = sql("SELECT status, started_at, ended_at FROM runs", home=str(home))
    assert frame["status"].tolist() == ["crashed"]
    ended = frame["ended_at"][0].to_pydatetime()
    assert frame["started_at"][0].to_pydatetime() < ended <= killed
    tasks = sql("SELECT step, status FROM tasks ORDER BY step", home=str(home))
    assert tasks.values.tolist() == [["quick", "succeeded"], ["sleepy", "failed"]]
    assert query(home, "SELECT status FROM nbflow.main.runs") == [("running",)]  # unwritten
    assert sorted(p.name for p in home.rglob("*")) == before


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_a_signal_while_the_run_starts_up_records_it_cancelled(
        tmp_path: Path, home: Path, sleepy: Path, delay: float) -> None:
    # What the lab's Cancel does right after Run: SIGINT once the run is recorded, while
    # the fork server and the first tasks are still starting. Closing the fork server
    # raced with a task thread dropping it as dead, and the run was recorded failed.
    env = {**os.environ, "NBFLOW_HOME": str(home)}
    proc = subprocess.Popen([*nbflow_command(), "execute", str(sleepy), "--events", "-"],
                            cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"run-started"' in line:
            break
    time.sleep(delay)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert query(home, "SELECT status FROM runs") == [("cancelled",)], err
    assert all(_gone(child.pid) for child in children), "a kernel or fork server outlived the run"
