"""--resume and --from, and a driver killed with SIGKILL mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from nbbuild import make_notebook
from nbtest import nbflow_command, query


def failing(fixed: bool) -> list[object]:
    return [
        "import time",
        ("n = 3", ["parameters"]),
        "%%step start\nitems = list(range(n))",
        "%%branch work --foreach items --as i\nout = i * 10",
        "%%step side\nside_value = 'independent'",
        "%%step combine\n" + ("total = sum(t.out for t in work)" if fixed
                              else "total = sum(t.out for t in work) / 0"),
        "%%step final\nresult = total + 1",
    ]


def test_resume_after_fix_clones_finished_tasks(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(failing(fixed=False), tmp_path / "res.ipynb")
    first = nbflow("execute", str(nb), "-p", "n", "4")
    assert first.returncode == 1
    assert "--resume 1" in first.stderr
    make_notebook(failing(fixed=True), nb)
    resumed = nbflow("execute", str(nb), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    rows = query(home, "SELECT step, task_index, status, cached_from, pid FROM tasks "
                       "WHERE run_id = 2 ORDER BY step, task_index")
    by_step: dict[str, list[tuple[object, ...]]] = {}
    for step, index, status, origin, pid in rows:
        by_step.setdefault(step, []).append((index, status, origin, pid))
    assert by_step["start"] == [(0, "cloned", "res/1/start/0", None)]
    assert [r[1] for r in by_step["work"]] == ["cloned"] * 4  # the origin's n=4, not the default
    assert by_step["side"][0][1] == "cloned"
    assert by_step["combine"][0][1] == "succeeded" and by_step["combine"][0][3] is not None
    assert by_step["final"][0][1] == "succeeded"
    assert query(home, "SELECT origin_run, status FROM runs WHERE run_id = 2") == [(1, "succeeded")]
    from nbflow.client.objects import Run

    run = Run("res/2", home=str(home))
    assert run.params == {"n": 4} and run.data.result == 61


def test_resume_from_a_step_reexecutes_it_and_after(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(failing(fixed=True), tmp_path / "res.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    again = nbflow("execute", str(nb), "--resume", "1", "--from", "work", "--no-cache")
    assert again.returncode == 0, again.stderr
    status = dict(query(home, "SELECT step, max(status) FROM tasks WHERE run_id = 2 GROUP BY step"))
    assert status == {"start": "cloned", "side": "cloned", "work": "succeeded",
                      "combine": "succeeded", "final": "succeeded"}


def test_resume_errors(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(failing(fixed=True), tmp_path / "res.ipynb")
    other = make_notebook(["x = 1", "%%step s\ny = x"], tmp_path / "other.ipynb")
    assert nbflow("execute", str(other)).returncode == 0
    none_yet = nbflow("execute", str(nb), "--resume")
    assert none_yet.returncode == 2 and "no run to resume" in none_yet.stderr
    assert nbflow("execute", str(nb)).returncode == 0
    with_params = nbflow("execute", str(nb), "--resume", "-p", "n", "2")
    assert with_params.returncode == 2 and "cannot be combined" in with_params.stderr
    missing = nbflow("execute", str(nb), "--resume", "9")
    assert missing.returncode == 2 and "res/9 does not exist" in missing.stderr
    foreign = nbflow("execute", str(nb), "--resume", "other/1")
    assert foreign.returncode == 2 and "belongs to flow 'other'" in foreign.stderr
    bad_from = nbflow("execute", str(nb), "--resume", "--from", "nope")
    assert bad_from.returncode == 2 and "no step 'nope'" in bad_from.stderr
    for done in (none_yet, with_params, missing, foreign, bad_from):
        assert "Traceback" not in done.stderr


def test_sigkill_mid_run_leaves_a_crashed_resumable_run(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([
        "import time, pathlib",
        "%%step quick\nfirst = 'done'",
        "%%step slow\npathlib.Path('slow-started').write_text('1')\ntime.sleep(300)\nsecond = 2",
        "%%step last\nthird = first + str(second)",
    ], tmp_path / "crash.ipynb")
    proc = subprocess.Popen(
        [*nbflow_command(), "execute", str(nb), "--max-workers", "1"], cwd=tmp_path,
        env={**os.environ, "NBFLOW_HOME": str(home)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while not (tmp_path / "slow-started").exists():
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.2)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its kernels, as a crash would
    proc.wait(timeout=30)
    listing = nbflow("runs")
    assert listing.returncode == 0 and "crashed" in listing.stdout, listing.stdout
    assert query(home, "SELECT status FROM runs") == [("crashed",)]
    from nbflow.client.objects import Run

    assert Run("crash/1", home=str(home))["quick"].task.data.first == "done"
    # fix the slow step and continue: quick is cloned, not re-run
    make_notebook([
        "import time, pathlib",
        "%%step quick\nfirst = 'done'",
        "%%step slow\nsecond = 2",
        "%%step last\nthird = first + str(second)",
    ], nb)
    resumed = nbflow("execute", str(nb), "--resume", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert dict(query(home, "SELECT step, status FROM tasks WHERE run_id = 2")) == {
        "quick": "cloned", "slow": "succeeded", "last": "succeeded"}
    assert Run("crash/2", home=str(home)).data.third == "done2"
