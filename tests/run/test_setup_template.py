"""Setup cells run once in a template the tasks fork from, or in every task (replay): the
same run either way (artifacts, cache keys, catalog rows, step and setup outputs), for the
example and test notebooks; setup that would not survive a fork is replayed, and
``nbflow execute`` says why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from nbbuild import make_notebook
from nbtest import EXAMPLES, ROOT, query, run_nbflow

NOTEBOOKS = {
    "classifier": [EXAMPLES / "classifier.ipynb"],
    "parameters": [EXAMPLES / "parameters.ipynb"],
    "train-predict": [EXAMPLES / "train.ipynb", EXAMPLES / "predict.ipynb"],
    "pipeline": [ROOT / "tests" / "notebooks" / "pipeline.ipynb"],
    "mutation": [ROOT / "tests" / "notebooks" / "mutation.ipynb"],
    "test-classifier": [ROOT / "tests" / "notebooks" / "classifier.ipynb"],
}
REPLAY_NOTE = "the setup cells run again in every task"


def _run(notebooks: list[Path], mode: str, tmp_path: Path) -> tuple[dict[str, object], str]:
    """What a run in ``mode`` leaves; both modes run in the same directory, one after the
    other, because pickled client objects (a ``Run``) hold their home's path."""
    place = tmp_path / "work"
    place.mkdir()
    for extra in notebooks[0].parent.glob("*.yaml"):
        shutil.copy(extra, place / extra.name)
    home = place / ".nbflow"
    stderr = ""
    for nb in notebooks:
        shutil.copy(nb, place / nb.name)
        done = run_nbflow("execute", nb.name, "--max-workers", "2", home=home, cwd=place,
                          env={"NBFLOW_SETUP": mode})
        assert done.returncode == 0, done.stderr
        stderr += done.stderr
    found = {"artifacts": _artifacts(home), "tasks": _tasks(home), "lineage": _lineage(home),
             "outputs": _outputs(home), "roles": _task_roles(home)}
    shutil.move(place, tmp_path / mode)
    return found, stderr


def _artifacts(home: Path) -> list[tuple[object, ...]]:
    # A pickled client object (predict's ``Run``) holds the times of the run it read,
    # which differ between any two homes: its bytes are not compared, the rest is.
    return query(home, "SELECT flow, step, task_index, name, type, "
                       "CASE WHEN type LIKE 'nbflow.%' THEN NULL ELSE hash END, "
                       "CASE WHEN type LIKE 'nbflow.%' THEN NULL ELSE size END, format, repr, "
                       "shape, schema, metric, persisted, reason FROM artifacts "
                       "ORDER BY flow, step, task_index, name")


def _tasks(home: Path) -> list[tuple[object, ...]]:
    return query(home, "SELECT flow, step, task_index, foreach_element, status, cache_key, "
                       "kernel_mode, packages FROM tasks ORDER BY flow, step, task_index")


def _lineage(home: Path) -> list[tuple[object, ...]]:
    return query(home, "SELECT flow, step, task_index, kind, read_flow, read_run, read_step, "
                       "read_name, read_hash FROM lineage ORDER BY ALL")


def _outputs(home: Path) -> dict[str, list[object]]:
    """Every code cell's outputs in the runs' executed notebooks (text, no timings)."""
    found = {}
    for path in sorted(home.glob("runs/*/*/notebook.ipynb")):
        nb = json.loads(path.read_text())
        for number, cell in enumerate(nb["cells"], 1):
            if cell["cell_type"] == "code":
                found[f"{path.parent.parent.name} {number}"] = [
                    {k: v for k, v in o.items() if k in ("output_type", "name", "text", "data")}
                    for o in cell.get("outputs", [])]
    return found


def _task_roles(home: Path) -> set[str]:
    roles = set()
    for log in home.glob("runs/*/*/*/*/notebook.ipynb"):
        roles |= {c["metadata"]["nbflow"]["role"] for c in json.loads(log.read_text())["cells"]}
    return roles


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_a_setup_template_gives_the_same_run_as_replaying_setup(
        name: str, tmp_path: Path) -> None:
    (template, said), (replay, _) = (_run(NOTEBOOKS[name], "template", tmp_path),
                                     _run(NOTEBOOKS[name], "replay", tmp_path))
    assert REPLAY_NOTE not in said, said
    for what in ("artifacts", "tasks", "lineage", "outputs"):
        assert template[what] == replay[what], what
    assert template["artifacts"], "the notebook stored no artifact: nothing was compared"
    # the template really ran the setup: no task replayed it (a replaying task logs it)
    assert "setup" in replay["roles"]  # type: ignore[operator]
    assert "setup" not in template["roles"]  # type: ignore[operator]


UNSAFE = {
    "thread": ("import threading, time\n"
               "threading.Thread(target=time.sleep, args=(60,), daemon=True, "
               "name='sleeper').start()", "setup cell 1: it started a thread (sleeper)"),
    "file": ("handle = open('data.txt')", "setup cell 1: it left "),
    "socket": ("import socket\nsock = socket.socket()", "setup cell 1: it left a socket open"),
    "process": ("import subprocess, sys\n"
                "proc = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])",
                "setup cell 1: it left a child process running"),
    "random": ("import random\nrandom.seed(7)",
               "setup cell 1 calls a random number generator"),
}


@pytest.mark.parametrize("case", list(UNSAFE))
def test_setup_unsafe_to_fork_is_replayed_in_every_task_and_execute_says_why(
        case: str, tmp_path: Path) -> None:
    source, why = UNSAFE[case]
    (tmp_path / "data.txt").write_text("x")
    make_notebook([source, "%load_ext nbflow",
                   "%%step start\nimport random\nitems = [1, 2]",
                   "%%branch work --foreach items --as i\nout = i * 10 + random.random()"],
                  tmp_path / "unsafe.ipynb")
    done = run_nbflow("execute", "unsafe.ipynb", "--max-workers", "2",
                      home=tmp_path / ".nbflow", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if REPLAY_NOTE in line]
    assert len(notes) == 1, done.stderr
    assert why in notes[0], notes[0]
    assert "setup" in _task_roles(tmp_path / ".nbflow")
    outs = query(tmp_path / ".nbflow", "SELECT count(DISTINCT repr) FROM artifacts "
                                       "WHERE step = 'work' AND name = 'out'")
    assert outs == [(2,)]
