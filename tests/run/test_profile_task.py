"""NBFLOW_PROFILE_TASK=DIR: each direct-engine task child writes its own cProfile."""

from __future__ import annotations

import pstats
from pathlib import Path

from nbbuild import make_notebook


def test_each_task_writes_a_profile_named_after_its_step(tmp_path: Path, nbflow) -> None:  # type: ignore[no-untyped-def]
    make_notebook(["import math", ("grid = [1, 2]", ["parameters"]),
                   "%%step start\nbase = 10",
                   "%%branch sweep --foreach grid --as g\nscore = base + g"],
                  tmp_path / "prof.ipynb")
    profiles = tmp_path / "profiles"
    done = nbflow("execute", "prof.ipynb", "-q", env={"NBFLOW_PROFILE_TASK": str(profiles)},
                  check=True)
    assert "succeeded" in done.stderr + done.stdout
    texts = sorted(profiles.glob("*.txt"))
    assert sorted(p.name.rsplit("-", 1)[0] for p in texts) == ["start", "sweep", "sweep"]
    for text in texts:
        body = text.read_text()
        assert body.startswith(f"task {text.name.rsplit('-', 1)[0]}, pid ")
        assert "ms from fork to the end of its last cell" in body and "ncalls" in body
        stats = pstats.Stats(str(text.with_suffix(".prof")))
        assert any(name == "run_cell" for _, _, name in stats.stats)  # type: ignore[attr-defined]
    nbflow("execute", "prof.ipynb", "-q", "--no-cache", check=True)  # without it: none
    assert sorted(profiles.glob("*.txt")) == texts
