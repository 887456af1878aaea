"""Reading never writes: every read command, the client API and the widgets' history work
on a read-only home, name the home they read, and never create a home."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from nbbuild import make_notebook
from nbtest import run_nbflow
from readonly import read_only, tree_state

READS = [
    ["runs"],
    ["runs", "two.ipynb"],
    ["logs", "two/1/a"],
    ["dump", "two/1"],
    ["dump", "two/1/b/0", "z"],
    ["sql", "SELECT status FROM runs"],
    ["why", "two.ipynb"],
    ["show", "two.ipynb"],
    ["catalog", "check"],
]

CLIENT = """
import nbflow
from nbflow.client.history import flows, list_runs
run = nbflow.Flow("two").latest_run
assert run.data.z == 4 and run.status == "succeeded", run
assert len(nbflow.sql("SELECT * FROM tasks")) == 2
assert flows() == ["two"] and list_runs()[0].status == "succeeded"
import nbflow.widgets
history = nbflow.widgets.RunHistory()
print("client ok")
"""


@pytest.fixture(scope="module")
def done_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ro")
    make_notebook(["x = 1", "%%step a\ny = x + 1\nprint('hello')", "%%step b\nz = y * 2"],
                  folder / "two.ipynb")
    home = folder / ".nbflow"
    done = run_nbflow("execute", "two.ipynb", home=home, cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder, home


@pytest.mark.parametrize("args", READS, ids=[" ".join(a) for a in READS])
def test_read_commands_work_on_a_read_only_home(done_home: tuple[Path, Path],
                                                args: list[str]) -> None:
    folder, home = done_home
    before = tree_state(home)
    with read_only(home) as run:
        done = run(*args, cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    if args[0] != "show":  # show reads only the notebook
        assert f"home: {home}" in done.stderr.splitlines()
    assert tree_state(home) == before


def test_sql_output_stays_machine_readable(done_home: tuple[Path, Path]) -> None:
    folder, home = done_home
    done = run_nbflow("sql", "SELECT run_id FROM runs", home=home, cwd=folder)
    assert done.stdout.split() == ["run_id", "1"]  # the home is named on stderr only


def test_client_api_and_widgets_on_a_read_only_home(done_home: tuple[Path, Path]) -> None:
    folder, home = done_home
    before = tree_state(home)
    with read_only(home) as run:
        done = run("-c", CLIENT, cwd=folder, program=[sys.executable])
    assert done.returncode == 0, done.stderr
    assert "client ok" in done.stdout
    assert tree_state(home) == before


def test_readers_leave_a_writable_home_untouched(done_home: tuple[Path, Path]) -> None:
    """Without a mount: no lock file, no migration, no crash repair by a reader."""
    folder, home = done_home
    before = tree_state(home)
    for args in READS:
        assert run_nbflow(*args, home=home, cwd=folder).returncode == 0, args
    assert tree_state(home) == before


@pytest.mark.parametrize("args", [["runs"], ["sql", "SELECT 1"], ["logs", "two/1/a"],
                                  ["dump", "two/1"], ["why", "two.ipynb"],
                                  ["catalog", "check"]])
def test_no_reader_creates_a_home(done_home: tuple[Path, Path], tmp_path: Path,
                                  args: list[str]) -> None:
    folder, _home = done_home
    nowhere = tmp_path / "no-home-here"
    done = run_nbflow(*args, home=nowhere, cwd=folder)
    assert done.returncode == 3, done.stderr
    assert f"no nbflow home at {nowhere} (set --home or NBFLOW_HOME)" in done.stderr
    assert not nowhere.exists()


def test_why_on_foreach_notebooks_writes_nothing(tmp_path: Path) -> None:
    """Planning a --foreach finds its elements' hashes (part of each task's key) without
    storing them: over a parameter, with the run's values and with new ones, and over a
    step's list that its run did not split (the branch is newer than the run)."""
    setup = ["import math", ("grid = [1, 2, 3]", ["parameters"]),
             "%%step start\nitems = ['a', 'b']"]
    make_notebook(setup, tmp_path / "fan.ipynb")
    home = tmp_path / ".nbflow"
    done = run_nbflow("execute", "fan.ipynb", home=home, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    make_notebook([*setup, "%%branch sq --foreach grid --as g\nv = g * g",
                   "%%branch up --foreach items --as s\nu = s.upper()"], tmp_path / "fan.ipynb")
    before = tree_state(home)
    for args in (["why", "fan.ipynb"], ["why", "fan.ipynb", "-p", "grid", "[4, 5, 6, 7]"]):
        done = run_nbflow(*args, home=home, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "sq               cell 4   runs" in done.stdout, done.stdout
        assert "up               cell 5   runs" in done.stdout, done.stdout
        assert tree_state(home) == before, args
    with read_only(home) as run:
        done = run("why", "fan.ipynb", "-p", "grid", "[8, 9]", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 of 2 tasks run" in done.stdout, done.stdout
    assert tree_state(home) == before
    # the hashes why computed are those the run stores: after the run, every task is reused
    assert run_nbflow("execute", "fan.ipynb", home=home, cwd=tmp_path).returncode == 0
    done = run_nbflow("why", "fan.ipynb", home=home, cwd=tmp_path)
    assert "sq               cell 4   reused" in done.stdout, done.stdout
    assert "up               cell 5   reused" in done.stdout, done.stdout
