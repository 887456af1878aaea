"""--resume re-executes what it is asked to, and what can no longer be cloned."""

from __future__ import annotations

from pathlib import Path

from nbbuild import make_notebook
from nbtest import query


def chain() -> list[object]:
    return [
        ("n = 3", ["parameters"]),
        "%%step start\nitems = list(range(n))",
        "%%branch work --foreach items --as i\nout = i * 10",
        "%%step side\nside_value = 'independent'",
        "%%step combine\ntotal = sum(t.out for t in work)",
        "%%step final\nresult = total + 1",
    ]


def statuses(home: Path, run_id: int) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for step, status in query(home, "SELECT step, status FROM tasks WHERE run_id = ?", [run_id]):
        found.setdefault(str(step), set()).add(str(status))
    return found


def test_resume_from_reexecutes_unchanged_steps(tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(chain(), tmp_path / "res.ipynb")
    assert nbflow("execute", str(nb)).returncode == 0
    again = nbflow("execute", str(nb), "--resume", "1", "--from", "work")
    assert again.returncode == 0, again.stderr
    assert statuses(home, 2) == {"start": {"cloned"}, "side": {"cloned"},
                                 "work": {"succeeded"}, "combine": {"succeeded"},
                                 "final": {"succeeded"}}
    assert query(home, "SELECT count(*) FROM tasks WHERE run_id = 2 AND status = 'succeeded' "
                       "AND pid IS NULL") == [(0,)]  # every re-executed task had a kernel


def unstorable(fixed: bool) -> list[object]:
    handle = "'the text'" if fixed else "open('data.txt')"
    return [
        "import os",
        f"%%step start\nhandle = {handle}\nsize = 3",
        "%%step other\nunrelated = 1",
        "%%step use\ntext = handle if isinstance(handle, str) else handle.read()",
        "%%step after\nwhole = (text, size)",
    ]


def test_resume_reruns_a_fixed_producer_of_an_unstorable_artifact(
        tmp_path: Path, nbflow, home: Path) -> None:
    (tmp_path / "data.txt").write_text("file text")
    nb = make_notebook(unstorable(fixed=False), tmp_path / "uns.ipynb")
    first = nbflow("execute", str(nb))
    assert first.returncode == 1 and "could not store" in first.stderr, first.stderr
    make_notebook(unstorable(fixed=True), nb)
    resumed = nbflow("execute", str(nb), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert statuses(home, 2) == {"start": {"succeeded"}, "other": {"cloned"},
                                 "use": {"succeeded"}, "after": {"succeeded"}}
    from nbflow.client.objects import Run

    assert Run("uns/2", home=str(home)).data.whole == ("the text", 3)


def test_resume_still_clones_an_unstorable_producer_whose_code_is_unchanged(
        tmp_path: Path, nbflow, home: Path) -> None:
    (tmp_path / "data.txt").write_text("file text")
    cells = unstorable(fixed=False)
    nb = make_notebook(cells, tmp_path / "uns.ipynb")
    assert nbflow("execute", str(nb)).returncode == 1
    cells[3] = "%%step use\ntext = 'not read'"  # the consumer no longer needs it
    make_notebook(cells, nb)
    resumed = nbflow("execute", str(nb), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert statuses(home, 2)["start"] == {"cloned"}
