"""What DESIGN promises about headless runs, through the real CLI: the runtime mutation
warning, chained maps, cache invalidation by the setup cells and by the kernelspec,
``-y`` parameters, the progress bar of a wide foreach, and ``nbflow sql``."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from nbbuild import make_notebook
from nbtest import nbflow_command, query


def test_an_unseen_in_place_change_draws_a_warning(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([
        "def grow(items):\n    items.append(len(items))",  # setup: the analysis cannot see into it
        "%%step make\nitems = [0]",
        "%%step use\ngrow(items)\ncount = len(items)",
    ], tmp_path / "mut.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 0, done.stderr
    assert "warning: step 'use' changed input 'items' in place" in done.stderr, done.stderr


def test_a_class_and_its_instance_read_together_draw_no_warning(tmp_path: Path, nbflow,
                                                                home: Path) -> None:
    nb = make_notebook([
        "%%step define\nclass Point:\n    def __init__(self, x):\n        self.x = x\n"
        "origin = Point(0)",
        "%%step use\nother = Point(origin.x + 1)\nx = other.x",  # reads Point, then origin
    ], tmp_path / "classes.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr  # nothing was changed in place
    from nbflow.client.objects import Run

    assert Run("classes/1", home=str(home)).data.x == 1


def test_a_branch_over_a_branch_chains_maps(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([
        "%%step start\nxs = [1, 2, 3]",
        "%%branch tens --foreach xs --as x\nv = x * 10",
        "%%branch plus --foreach tens --as t\nw = t.v + 1",
        "%%step join\ntotal = [t.w for t in plus]",
    ], tmp_path / "chain.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 0, done.stderr
    from nbflow.client.objects import Run

    assert Run("chain/1", home=str(home)).data.total == [11, 21, 31]
    assert query(home, "SELECT count(*) FROM tasks WHERE step = 'plus'") == [(3,)]


def test_a_setup_edit_reruns_every_step(tmp_path: Path, nbflow, home: Path) -> None:
    path = tmp_path / "setup.ipynb"
    steps = ["%%step a\nx = K", "%%step b\ny = 1"]
    make_notebook(["K = 1", *steps], path)
    assert nbflow("execute", str(path)).returncode == 0
    assert nbflow("execute", str(path)).returncode == 0
    assert dict(query(home, "SELECT step, status FROM tasks WHERE run_id = 2")) == {
        "a": "cached", "b": "cached"}
    make_notebook(["K = 2", *steps], path)  # setup is replayed before every step
    done = nbflow("execute", str(path))
    assert done.returncode == 0, done.stderr
    assert dict(query(home, "SELECT step, status FROM tasks WHERE run_id = 3")) == {
        "a": "succeeded", "b": "succeeded"}


def test_another_kernelspec_reruns_the_step(tmp_path: Path, nbflow, home: Path) -> None:
    spec_dir = tmp_path / "jupyter" / "kernels" / "second"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Second", "language": "python", "env": {"WHICH_KERNEL": "second"},
    }))
    env = {"JUPYTER_PATH": str(tmp_path / "jupyter")}
    path = tmp_path / "ks.ipynb"
    body = "import os\nwhich = os.environ.get('WHICH_KERNEL', 'python3')"
    make_notebook([f"%%step s\n{body}", "%%step t\nother = 1"], path)
    assert nbflow("execute", str(path), env=env).returncode == 0
    make_notebook([f"%%step s --kernel second\n{body}", "%%step t\nother = 1"], path)
    done = nbflow("execute", str(path), env=env)
    assert done.returncode == 0, done.stderr
    assert dict(query(home, "SELECT step, status FROM tasks WHERE run_id = 2")) == {
        "s": "succeeded", "t": "cached"}
    from nbflow.client.objects import Run

    assert Run("ks/2", home=str(home)).data.which == "second"


def test_yaml_string_parameters(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook([("n = 1\nnames = ['a']", ["parameters"]),
                        "%%step s\nout = (n, names)"], tmp_path / "y.ipynb")
    done = nbflow("execute", str(nb), "-y", "n: 4\nnames: [x, y]")
    assert done.returncode == 0, done.stderr
    from nbflow.client.objects import Run

    run = Run("y/1", home=str(home))
    assert run.params == {"n": 4, "names": ["x", "y"]}
    assert run.data.out == (4, ["x", "y"])


def test_a_wide_foreach_gets_a_progress_bar_on_a_terminal(tmp_path: Path, home: Path) -> None:
    nb = make_notebook([("grid = [0, 1, 2, 3, 4, 5, 6, 7, 8]", ["parameters"]),
                        "%%branch many --foreach grid --as g\nsq = g * g",
                        "%%step total\ns = sum(t.sq for t in many)"], tmp_path / "wide.ipynb")
    primary, secondary = pty.openpty()
    # a fresh pty is 0 columns wide; a user's terminal is not
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "NBFLOW_HOME": str(home)}
    with subprocess.Popen([*nbflow_command(), "execute", str(nb)], stdin=subprocess.DEVNULL,
                          stdout=secondary, stderr=secondary, cwd=tmp_path, env=env) as proc:
        os.close(secondary)
        output = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            output += chunk
        assert proc.wait(240) == 0, output.decode(errors="replace")
    os.close(primary)
    text = output.decode(errors="replace")
    assert "many: 100%" in text and "9/9" in text, text  # tqdm's bar for the 9 tasks
    assert "many/3 started" not in text  # one bar instead of a line per task


def test_nbflow_sql_prints_rows_and_reads_artifact_tables(tmp_path: Path, nbflow,
                                                           home: Path) -> None:
    nb = make_notebook(["import pandas as pd",
                        "%%step load\nframe = pd.DataFrame({'a': [1, 2, 3]})\nscore = 0.5"],
                       tmp_path / "q.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    done = nbflow("sql", "SELECT name, value FROM metrics")
    assert done.returncode == 0, done.stderr
    assert "score" in done.stdout and "0.5" in done.stdout
    table = nbflow("sql", "SELECT sum(a) AS total FROM artifact('q/1/load/0', 'frame')")
    assert table.returncode == 0, table.stderr
    assert "total" in table.stdout and "6" in table.stdout
    bad = nbflow("sql", "SELECT * FROM no_such_table")
    assert bad.returncode != 0 and "no_such_table" in bad.stderr
    assert "Traceback" not in bad.stderr
