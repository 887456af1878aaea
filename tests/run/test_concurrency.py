"""Four `nbflow execute` processes and a polling reader share one home without losing a row."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from nbbuild import make_notebook
from nbtest import nbflow_command, query


def test_four_writers_and_a_reader_lose_nothing(tmp_path: Path, home: Path) -> None:
    nb = make_notebook([
        "import os",
        ("n = 3\nseed = 0", ["parameters"]),
        "%%step start\nitems = [seed * 100 + i for i in range(n)]",
        "%%branch work --foreach items --as i\nout = i * 2\nlabel = f'item-{i}'",
        "%%step join\ntotal = sum(t.out for t in work)",
    ], tmp_path / "conc.ipynb")
    env = {**os.environ, "NBFLOW_HOME": str(home)}
    writers = [
        subprocess.Popen([*nbflow_command(), "execute", str(nb), "-p", "seed", str(seed),
                          "--max-workers", "1", "-q"],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for seed in range(4)
    ]
    reader_errors = []
    polls = 0
    while any(w.poll() is None for w in writers):
        if not (home / "catalog.duckdb").exists():  # no home yet, and readers say so
            time.sleep(0.1)
            continue
        done = subprocess.run([*nbflow_command(), "runs"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        polls += 1
        if done.returncode != 0 or "rror" in done.stderr:
            reader_errors.append(done.stderr)
        time.sleep(0.1)
    for writer in writers:
        _out, err = writer.communicate()
        assert writer.returncode == 0, err
        assert "lock" not in err.lower()
    assert reader_errors == []
    assert polls >= 2
    assert query(home, "SELECT count(*), count(DISTINCT run_id) FROM runs "
                       "WHERE status = 'succeeded'") == [(4, 4)]
    # every task and every artifact of every run is there
    assert query(home, "SELECT run_id, count(*) FROM tasks GROUP BY run_id ORDER BY run_id") == [
        (r, 5) for r in (1, 2, 3, 4)]
    artifacts = query(home, "SELECT run_id, count(*) FROM artifacts GROUP BY run_id ORDER BY run_id")
    # start: items; work x3: i, out, label; join: total
    assert artifacts == [(r, 1 + 3 * 3 + 1) for r in (1, 2, 3, 4)]
    totals = sorted(v for (v,) in query(home, "SELECT value FROM metrics WHERE name = 'total'"))
    assert totals == sorted(sum(2 * (s * 100 + i) for i in range(3)) for s in range(4))
