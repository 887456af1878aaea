"""Every subcommand, given bad arguments, answers with a message and its documented exit
code (nbflow --help), never a Python traceback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from nbbuild import make_notebook
from nbtest import run_nbflow

from nbflow.cli.main import LazyGroup

USAGE, HOME, STEP_FAILED = 2, 3, 1


@pytest.fixture(scope="module")
def done_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A home holding one run of a two-step notebook: (folder, home)."""
    folder = tmp_path_factory.mktemp("cli")
    make_notebook(["x = 1", "%%step a\ny = x + 1", "%%step b\nz = y * 2"], folder / "two.ipynb")
    home = folder / ".nbflow"
    done = run_nbflow("execute", "two.ipynb", home=home, cwd=folder)
    assert done.returncode == 0, done.stderr
    (folder / "list.ipynb").write_text("[1, 2]")
    (folder / "bad.yaml").write_text("a: [")
    (folder / "plain-file").write_text("not a home")
    return folder, home


def _case(args: list[str], code: int, says: str) -> tuple[list[str], int, str]:
    return args, code, says


CASES = [
    _case(["nosuchcommand"], USAGE, "No such command"),
    _case(["execute"], USAGE, "Missing argument"),
    _case(["execute", "missing.ipynb"], USAGE, "does not exist"),
    _case(["execute", "list.ipynb"], USAGE, "not a notebook"),
    _case(["execute", "two.ipynb", "-p", "nosuch", "1"], USAGE, "nosuch"),
    _case(["execute", "two.ipynb", "-y", "{a: ["], USAGE, "not valid YAML"),
    _case(["execute", "two.ipynb", "-f", "bad.yaml"], USAGE, "not valid YAML"),
    _case(["execute", "two.ipynb", "--max-workers", "0"], USAGE, "--max-workers"),
    _case(["execute", "two.ipynb", "--resume", "99"], USAGE, "99"),
    _case(["execute", "two.ipynb", "--home", "plain-file"], HOME, "is a file, not a folder"),
    _case(["show", "list.ipynb"], USAGE, "not a notebook"),
    _case(["show", "two.ipynb", "--format", "nope"], USAGE, "nope"),
    _case(["why", "two.ipynb", "nostep"], USAGE, "no step 'nostep'"),
    _case(["why", "two.ipynb", "--home", "missing-home"], HOME, "no nbflow home at"),
    _case(["runs", "-n", "many"], USAGE, "many"),
    _case(["runs", "--home", "missing-home"], HOME,
          "(set --home or NBFLOW_HOME)"),
    _case(["runs", "--home", "plain-file"], HOME, "is a file, not a folder"),
    _case(["logs", "two"], USAGE, "two"),
    _case(["logs", "two/1"], USAGE, "names a run"),
    _case(["logs", "two/1/nostep"], USAGE, "has no step 'nostep'"),
    _case(["logs", "two/1/a/5"], USAGE, "has no task 5"),
    _case(["logs", "two/99/a"], USAGE, "does not exist"),
    _case(["dump", "two"], USAGE, "names a flow"),
    _case(["dump", "two/1", "NOSUCHNAME"], USAGE, "has no artifact 'NOSUCHNAME'"),
    _case(["dump", "two/1/a/0", "NOSUCHNAME"], USAGE, "has no artifact 'NOSUCHNAME'"),
    _case(["dump", "two/1/nostep"], USAGE, "has no step 'nostep'"),
    _case(["sql", "selec"], USAGE, "syntax error"),
    _case(["sql", "SELECT nosuch FROM runs"], USAGE, "nosuch"),
    _case(["sql", "SELECT 1", "--home", "missing-home"], HOME, "no nbflow home at"),
    _case(["catalog", "check", "--home", "missing-home"], HOME, "no nbflow home at"),
    _case(["catalog", "rebuild", "--home", "plain-file"], HOME, "is a file, not a folder"),
    _case(["catalog", "nosuch"], USAGE, "No such command"),
]


@pytest.mark.parametrize(("args", "code", "says"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_arguments_get_a_message_and_their_exit_code(
        done_home: tuple[Path, Path], args: list[str], code: int, says: str) -> None:
    folder, home = done_home
    done = run_nbflow(*args, home=home, cwd=folder)
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert done.returncode == code, output
    assert says in output, output


def test_every_subcommand_is_walked() -> None:
    walked = {args[0] for args, _code, _says in CASES}
    assert set(LazyGroup.COMMANDS) <= walked


def test_help_documents_distinct_exit_codes(tmp_path: Path) -> None:
    done = run_nbflow("--help", home=tmp_path / "h", cwd=tmp_path)
    assert done.returncode == 0
    for code, meaning in [("1", "a step failed"), ("2", "bad input"), ("3", "home or catalog"),
                          ("130", "SIGINT"), ("143", "SIGTERM")]:
        line = next((ln for ln in done.stdout.splitlines() if ln.strip().startswith(code + " ")),
                    "")
        assert meaning in line, done.stdout
    assert not (tmp_path / "h").exists()


def test_why_with_a_no_cache_step_before_another_step(tmp_path: Path) -> None:
    """A --no-cache step, then a step reading it (was a KeyError)."""
    home = tmp_path / ".nbflow"
    make_notebook(["%load_ext nbflow", "%%step fetch --no-cache\nmodel = 3",
                   "%%step predict\nout = model * 2"], tmp_path / "nc.ipynb")
    assert run_nbflow("execute", "nc.ipynb", home=home, cwd=tmp_path).returncode == 0
    done = run_nbflow("why", "nc.ipynb", home=home, cwd=tmp_path)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    assert "--no-cache" in done.stdout and "upstream step 'fetch' runs" in done.stdout


def test_a_damaged_catalog_names_the_rebuild_command(done_home: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    folder, home = done_home
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    catalog = copy / "catalog.duckdb"
    size = catalog.stat().st_size
    with open(catalog, "r+b") as f:  # scribble over every block after the header
        for offset in range(12288, size, 262144):
            f.seek(offset)
            f.write(os.urandom(8192))
    for args in (["runs"], ["dump", "two/1"], ["sql", "SELECT * FROM artifacts"]):
        done = run_nbflow(*args, "--home", str(copy), home=copy, cwd=folder)
        assert "Traceback" not in done.stderr
        assert done.returncode == HOME, (args, done.stdout, done.stderr)
        assert "nbflow catalog rebuild" in done.stderr


def test_a_read_only_home_cannot_be_written(done_home: tuple[Path, Path]) -> None:
    folder, home = done_home
    from readonly import read_only

    with read_only(home) as run:
        done = run("execute", "two.ipynb", cwd=folder)
    assert "Traceback" not in done.stderr
    assert done.returncode == HOME, done.stderr
    assert "not writable" in done.stderr


def test_a_memory_error_in_a_step_is_printed_once_with_a_hint(tmp_path: Path) -> None:
    make_notebook(["x = 1", "%%step hungry\nraise MemoryError()"], tmp_path / "oom.ipynb")
    done = run_nbflow("execute", "oom.ipynb", home=tmp_path / ".nbflow", cwd=tmp_path)
    assert done.returncode == STEP_FAILED, done.stderr
    assert done.stderr.count("Traceback (most recent call last)") == 1, done.stderr
    assert "Exception encountered" not in done.stderr  # papermill's copy of the traceback
    assert "step 'hungry': the step failed: MemoryError" in done.stderr
    assert "hint: the step ran out of memory" in done.stderr
